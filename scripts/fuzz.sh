#!/usr/bin/env bash
# Fuzzes one of the libFuzzer targets of tests/fuzz under AddressSanitizer and UndefinedBehaviorSanitizer.
#   bash scripts/fuzz.sh [TARGET] [SECONDS]     TARGET: gguf_reader (default), tokenizer, inspect_json,
#                                               atomese, safetensors or sentencepiece;
#                                               SECONDS: how long (default 600)
# Builds build-fuzz/fuzz_TARGET with clang++, adds the target's seed corpus (tests/fuzz/corpus/,
# tests/fuzz/corpus_tokenizer/, tests/fuzz/corpus_atomese/, tests/fuzz/corpus_safetensors/ or tests/fuzz/corpus_sentencepiece/) to the working corpus build-fuzz/corpus-TARGET/
# (kept between runs, so each run starts where the last one stopped) and fuzzes. Any crash, sanitizer report, leak, timeout or out-of-memory
# fails the script; libFuzzer saves the input in build-fuzz/artifacts/ (replay it with:
# build-fuzz/fuzz_TARGET build-fuzz/artifacts/crash-...). Copy an input worth keeping into the seed corpus: the
# test command replays every seed under the sanitizers. Afterwards, if llvm-profdata and llvm-cov are present,
# prints the line coverage of the code under test reached by the corpus (set FUZZ_COVERAGE=0 to skip).
set -euo pipefail
cd "$(dirname "$0")/.."

target=gguf_reader
if [ $# -gt 0 ] && ! [[ "$1" =~ ^[0-9]+$ ]]; then
    target="$1"
    shift
fi
seconds="${1:-600}"
case "$target" in
    gguf_reader) seeds=tests/fuzz/corpus dict=(-dict=tests/fuzz/gguf.dict) covered=include/cogqat/io/gguf.hpp ;;
    inspect_json) seeds=tests/fuzz/corpus dict=(-dict=tests/fuzz/gguf.dict) covered=tools/cogqat/inspect_json.hpp ;;
    tokenizer) seeds=tests/fuzz/corpus_tokenizer dict=() covered="include/cogqat/model/spm_tokenizer.hpp include/cogqat/model/bpe_tokenizer.hpp include/cogqat/model/bpe_pretokenizer.hpp" ;;
    atomese) seeds=tests/fuzz/corpus_atomese dict=(-dict=tests/fuzz/atomese.dict) covered=include/cogqat/cog/atomese.hpp ;;
    safetensors) seeds=tests/fuzz/corpus_safetensors dict=(-dict=tests/fuzz/safetensors.dict) covered=include/cogqat/io/safetensors.hpp ;;
    sentencepiece) seeds=tests/fuzz/corpus_sentencepiece dict=() covered=include/cogqat/io/sentencepiece_model.hpp ;;
    *) echo "usage: bash scripts/fuzz.sh [gguf_reader|tokenizer|inspect_json|atomese|safetensors|sentencepiece] [SECONDS]" >&2; exit 2 ;;
esac
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: bash scripts/fuzz.sh [gguf_reader|tokenizer|inspect_json|atomese|safetensors|sentencepiece] [SECONDS]" >&2
    exit 2
fi

out=build-fuzz
corpus="$out/corpus-$target"
binary="$out/fuzz_$target"
mkdir -p "$corpus" "$out/artifacts"

libfuzzer_works() {
    command -v clang++ >/dev/null 2>&1 || return 1
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' > "$out/probe.cpp"
    clang++ -fsanitize=fuzzer,address,undefined "$out/probe.cpp" -o "$out/probe" >/dev/null 2>&1
}
if ! libfuzzer_works; then
    echo "fuzz.sh: installing clang and its libFuzzer runtime with apt-get" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq clang libclang-rt-dev
    libfuzzer_works || { echo "fuzz.sh: clang++ still cannot link -fsanitize=fuzzer" >&2; exit 1; }
fi

flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude)
echo "fuzz.sh: building $binary"
clang++ "${flags[@]}" "tests/fuzz/fuzz_$target.cpp" -o "$binary"

cp "$seeds"/* "$corpus/"
echo "fuzz.sh: fuzzing $target for $seconds s, corpus $corpus ($(ls "$corpus" | wc -l) files)"
# Inputs stay small (hostile counts and lengths matter, not bulk); 2 GB of RSS or 10 s for one input is a finding.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
"$binary" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    "${dict[@]}" -artifact_prefix="$out/artifacts/" -print_final_stats=1 \
    "$corpus" 2>&1 | tee "$out/fuzz.log" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz.sh: FINDING (exit $status); see $out/fuzz.log and $out/artifacts/" >&2
    exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -1)
echo "fuzz.sh: no finding in $seconds s: ${execs:-?} executions; last status: $(grep -E '^#[0-9]+' "$out/fuzz.log" | tail -1)"

if [ "${FUZZ_COVERAGE:-1}" != 0 ] && command -v llvm-profdata >/dev/null 2>&1 && command -v llvm-cov >/dev/null 2>&1; then
    clang++ -std=c++20 -g -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -Iinclude \
        "tests/fuzz/fuzz_$target.cpp" -o "${binary}_cov"
    LLVM_PROFILE_FILE="$out/cov.profraw" "${binary}_cov" -runs=0 "$corpus" >/dev/null 2>&1
    llvm-profdata merge -sparse "$out/cov.profraw" -o "$out/cov.profdata"
    echo "fuzz.sh: coverage of the corpus ($(ls "$corpus" | wc -l) files):"
    # shellcheck disable=SC2086 # covered may list several files
    llvm-cov report "${binary}_cov" -instr-profile="$out/cov.profdata" $covered
fi
