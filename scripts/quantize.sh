#!/usr/bin/env bash
# The main job: builds the cogqat tool (installing missing Debian packages) and quantizes a model.
#   bash scripts/quantize.sh                        the embedded default: stories260K from ../shared (or a
#                                                   generated llama-shaped model) -> F32 GGUF -> default
#                                                   policy, files and JSON report in cogqat-out/
#   bash scripts/quantize.sh IN.gguf OUT.gguf [...] cogqat quantize with your model and options
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cogqat_install_deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target cogqat_cli >/dev/null
if [ $# -eq 0 ]; then
    exec build/bin/cogqat
fi
exec build/bin/cogqat quantize "$@"
