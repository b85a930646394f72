#!/usr/bin/env bash
# Fuzzes gguf::reader::parse with libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer.
#   bash scripts/fuzz.sh [SECONDS]      run for SECONDS (default 600)
# Builds build-fuzz/fuzz_gguf_reader with clang++, adds the seed corpus tests/fuzz/corpus/ to the working
# corpus build-fuzz/corpus/ (kept between runs, so each run starts where the last one stopped) and fuzzes.
# Any crash, sanitizer report, leak, timeout or out-of-memory fails the script; libFuzzer saves the input in
# build-fuzz/artifacts/ (replay it with: build-fuzz/fuzz_gguf_reader build-fuzz/artifacts/crash-...).
# Afterwards, if llvm-profdata and llvm-cov are present, prints the line coverage of gguf.hpp reached by the
# corpus (set FUZZ_COVERAGE=0 to skip).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-600}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: bash scripts/fuzz.sh [SECONDS]" >&2
    exit 2
fi

out=build-fuzz
mkdir -p "$out/corpus" "$out/artifacts"

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
echo "fuzz.sh: building $out/fuzz_gguf_reader"
clang++ "${flags[@]}" tests/fuzz/fuzz_gguf_reader.cpp -o "$out/fuzz_gguf_reader"

cp tests/fuzz/corpus/* "$out/corpus/"
echo "fuzz.sh: fuzzing for $seconds s, corpus $out/corpus ($(ls "$out/corpus" | wc -l) files)"
# Inputs stay small (hostile counts and lengths matter, not bulk); 2 GB of RSS or 10 s for one input is a finding.
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
"$out/fuzz_gguf_reader" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
    -dict=tests/fuzz/gguf.dict -artifact_prefix="$out/artifacts/" -print_final_stats=1 \
    "$out/corpus" 2>&1 | tee "$out/fuzz.log" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz.sh: FINDING (exit $status); see $out/fuzz.log and $out/artifacts/" >&2
    exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log" | tail -1)
echo "fuzz.sh: no finding in $seconds s: ${execs:-?} executions; last status: $(grep -E '^#[0-9]+' "$out/fuzz.log" | tail -1)"

if [ "${FUZZ_COVERAGE:-1}" != 0 ] && command -v llvm-profdata >/dev/null 2>&1 && command -v llvm-cov >/dev/null 2>&1; then
    clang++ -std=c++20 -g -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping -Iinclude \
        tests/fuzz/fuzz_gguf_reader.cpp -o "$out/fuzz_gguf_reader_cov"
    LLVM_PROFILE_FILE="$out/cov.profraw" "$out/fuzz_gguf_reader_cov" -runs=0 "$out/corpus" >/dev/null 2>&1
    llvm-profdata merge -sparse "$out/cov.profraw" -o "$out/cov.profdata"
    echo "fuzz.sh: coverage of the corpus ($(ls "$out/corpus" | wc -l) files):"
    llvm-cov report "$out/fuzz_gguf_reader_cov" -instr-profile="$out/cov.profdata" include/cogqat/io/gguf.hpp
fi
