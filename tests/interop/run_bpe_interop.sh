#!/usr/bin/env bash
# Our byte-level BPE tokenizer against a real llama.cpp's (node-llama-cpp 3.22.1): one small GGUF per
# pre-tokenizer (default, llama-bpe, qwen2) with a vocabulary of a few thousand merges trained by the test, the
# same corpus tokenized by both, ids compared (test_bpe_interop.cpp says what the corpus holds). Exit code 77
# (skipped) when node-llama-cpp is absent. The training text is the TinyStories sample in SHARED_DIR when there is
# one, else the corpus itself.
#   run_bpe_interop.sh BPE_INTEROP_TEST WORK_DIR SHARED_DIR
set -euo pipefail
test_program=$1 work=$2
shared=${COGQAT_SHARED_DIR:-$3}
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -f "$here/node_modules/node-llama-cpp/package.json" ] || ! command -v node >/dev/null 2>&1; then
    echo "skipped: node-llama-cpp is not installed in $here/node_modules (scripts/test.sh installs it with npm)"
    exit 77
fi
training=$shared/models/tinystories-valid/tinystories_val_part.txt
[ -f "$training" ] || training=""

rm -rf "$work" && mkdir -p "$work"
"$test_program" prepare "$work" $training
jobs=()
for pre in default llama-bpe qwen2; do jobs+=("$work/bpe-$pre.gguf:$work/llamacpp-$pre.txt"); done
node "$here/llamacpp_tokenize.mjs" "$work/corpus.json" "${jobs[@]}"
"$test_program" check "$work"
