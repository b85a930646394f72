#!/usr/bin/env bash
# Interop with a real llama.cpp: convert stories260K and a generated model with our CLI, quantize them with
# several presets and overrides, then (1) compare every quantized tensor with ggml's own quantizer and
# (2) load every file in llama.cpp and run it to finite logits; llama.cpp's greedy continuation of our F32
# stories260K must begin with the documented text. Exit code 77 (skipped) when a prerequisite is absent.
#   run_interop.sh COGQAT_CLI GGML_BYTES_TEST WORK_DIR SHARED_DIR
set -euo pipefail
cli=$1 ggml_test=$2 work=$3
shared=${COGQAT_SHARED_DIR:-$4}
here=$(cd "$(dirname "$0")" && pwd)
model=$shared/models/stories260K

if [ ! -f "$here/node_modules/node-llama-cpp/package.json" ] || ! command -v node >/dev/null 2>&1; then
    echo "skipped: node-llama-cpp is not installed in $here/node_modules (scripts/test.sh installs it with npm)"
    exit 77
fi
if [ ! -f "$model/stories260K.bin" ]; then
    echo "skipped: $model/stories260K.bin not found (set COGQAT_SHARED_DIR)"
    exit 77
fi

rm -rf "$work" && mkdir -p "$work"
"$cli" convert llama2c "$model/stories260K.bin" "$model/tok512.bin" "$work/stories-f32.gguf"
"$cli" convert synthetic "$work/synthetic-f32.gguf"
for preset in default q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m f16; do
    "$cli" quantize --quiet "$work/stories-f32.gguf" "$work/stories-$preset.gguf" --preset "$preset" >/dev/null
done
"$cli" quantize --quiet "$work/stories-f32.gguf" "$work/stories-override.gguf" --tensor-type 'blk\.[0-1]\..*=q8_0' --tensor-type 'attn=q4_1' >/dev/null
for preset in default q2_k q3_k_m q4_k_s q5_k_m q6_K; do
    "$cli" quantize --quiet "$work/synthetic-f32.gguf" "$work/synthetic-$preset.gguf" --preset "$preset" >/dev/null
done

echo "== ggml byte identity"
COGQAT_INTEROP_F32="$work/stories-f32.gguf" COGQAT_INTEROP_FILES="$(ls "$work"/stories-*.gguf | grep -v f32 | tr '\n' ' ')" "$ggml_test"
COGQAT_INTEROP_F32="$work/synthetic-f32.gguf" COGQAT_INTEROP_FILES="$(ls "$work"/synthetic-*.gguf | grep -v f32 | tr '\n' ' ')" "$ggml_test"

echo "== llama.cpp loads and runs every file"
node "$here/llamacpp_check.mjs" --greedy "$work/stories-f32.gguf" --expect "Once upon a time, there was a little girl named Lily." "$work"/*.gguf
