#!/usr/bin/env bash
# Builds cogqat and runs every test: installs missing Debian packages, configures, builds and runs CTest.
#   bash scripts/test.sh              Release build in build/
#   bash scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
cogqat_install_deps
cogqat_install_llamacpp

jobs=$(nproc 2>/dev/null || echo 2)
if [ "${1:-}" = "--sanitize" ]; then
    build=build-asan
    # -O1 with line tables only: the sanitizers need no more to report a place, and the build is the larger
    # part of this pass on a 2-core machine.
    options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DCOGQAT_SANITIZE=ON -DCOGQAT_BUILD_BENCHMARKS=OFF -DCOGQAT_WERROR=ON)
    # The package tests check CMake plumbing and the interop test llama.cpp's agreement, not memory safety
    # (the same CLI paths run sanitized in the cli test); both run in the Release pass.
    exclude=(-E '^(package_|llamacpp_interop)')
    # Only what the sanitized tests run: the demos, the quality table and the interop programs are built
    # (and warning-checked) in the Release pass, and building them twice costs CI minutes for nothing.
    targets=(--target cogqat_test_programs)
else
    build=build
    options=(-DCMAKE_BUILD_TYPE=Release -DCOGQAT_WERROR=ON)
    exclude=()
    targets=()
fi
cmake -S . -B "$build" "${options[@]}"
cmake --build "$build" -j "$jobs" "${targets[@]}"
ctest --test-dir "$build" --output-on-failure -j "$jobs" "${exclude[@]}"
