#!/usr/bin/env bash
# Behaviour unchanged, checked: two builds of the tool write byte-identical files for the same jobs.
#   bash scripts/compare_outputs.sh CLI_A CLI_B [WORK_DIR]
# CLI_A and CLI_B are two `cogqat` binaries, e.g. a build of the commit before a refactoring and one after:
#   git worktree add /tmp/before HEAD~3 && cmake -S /tmp/before -B /tmp/before/build -DCMAKE_BUILD_TYPE=Release &&
#   cmake --build /tmp/before/build --target cogqat_cli && bash scripts/compare_outputs.sh /tmp/before/build/bin/cogqat build/bin/cogqat
# The jobs, at fixed seeds and thread counts: stories260K from ../shared converted to F32 (else a generated
# model), quantized with the default policy, q4_K_M and q4_0, the data-free --auto at llama.cpp's Q4_0 size and
# at its default target, and a short QAT run. Exit 1 when any file differs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: bash scripts/compare_outputs.sh CLI_A CLI_B [WORK_DIR]" >&2
    exit 2
fi
a="$1" b="$2" work="${3:-$(mktemp -d)}"
shared="${COGQAT_SHARED_DIR:-../shared}"
mkdir -p "$work/a" "$work/b"

jobs() {  # jobs CLI DIR
    local cli="$1" dir="$2"
    if [ -f "$shared/models/stories260K/stories260K.bin" ]; then
        "$cli" convert llama2c "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.bin" "$dir/f32.gguf" >/dev/null
    else
        "$cli" convert synthetic "$dir/f32.gguf" --seed 3 >/dev/null
    fi
    "$cli" quantize -q -j 2 "$dir/f32.gguf" "$dir/default.gguf" >/dev/null
    "$cli" quantize -q -j 2 "$dir/f32.gguf" "$dir/q4_k_m.gguf" --preset q4_k_m >/dev/null
    "$cli" quantize -q -j 2 "$dir/f32.gguf" "$dir/q4_0.gguf" --preset q4_0 >/dev/null
    "$cli" quantize -q -j 2 "$dir/f32.gguf" "$dir/auto-sized.gguf" --auto --target-bytes 277024 --seed 1 >/dev/null
    "$cli" quantize -q -j 2 "$dir/f32.gguf" "$dir/auto-default.gguf" --auto --seed 1 --calib-tokens 512 >/dev/null
    "$cli" qat -q -j 2 "$dir/f32.gguf" "$dir/qat.gguf" --steps 6 --steps-per-unit 1 --samples 8 --batch 2 --seq-len 32 --seed 1 >/dev/null
}

echo "compare_outputs: running the jobs with $a"
jobs "$a" "$work/a"
echo "compare_outputs: running the jobs with $b"
jobs "$b" "$work/b"
status=0
for file in "$work"/a/*.gguf; do
    name=$(basename "$file")
    if cmp -s "$file" "$work/b/$name"; then
        echo "same      $name ($(stat -c %s "$file") bytes, sha256 $(sha256sum "$file" | cut -c1-16))"
    else
        echo "DIFFERENT $name"
        status=1
    fi
done
exit "$status"
