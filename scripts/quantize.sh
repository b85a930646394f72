#!/usr/bin/env bash
# The main job: builds the cogqat tool (installing missing Debian packages) and quantizes.
#   bash scripts/quantize.sh            every block format on the embedded default (stories260K's weights
#                                       from ../shared when present, else a generated sample), with errors
#   bash scripts/quantize.sh IN.f32     the same on your own raw float32 array
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cogqat_install_deps
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target cogqat_cli >/dev/null
exec build/bin/cogqat raw survey "$@"
