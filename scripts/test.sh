#!/usr/bin/env bash
# Builds cogqat and runs every test: installs missing Debian packages, configures, builds and runs CTest.
#   bash scripts/test.sh              Release build in build/
#   bash scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/
# --build-only stops after the build, --test-only runs the tests of a finished build (so that .ci/run can
# build one pass while the other's tests run).
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0 build_step=1 test_step=1
for argument in "$@"; do
    case "$argument" in
        --sanitize) sanitize=1 ;;
        --build-only) test_step=0 ;;
        --test-only) build_step=0 ;;
        *)
            echo "usage: bash scripts/test.sh [--sanitize] [--build-only | --test-only]" >&2
            exit 2
            ;;
    esac
done
if [ $build_step -eq 0 ] && [ $test_step -eq 0 ]; then
    echo "scripts/test.sh: --build-only and --test-only exclude each other" >&2
    exit 2
fi

source scripts/deps.sh
if [ $build_step -eq 1 ]; then
    cogqat_install_deps
    cogqat_install_llamacpp
fi

jobs=$(nproc 2>/dev/null || echo 2)
if [ $sanitize -eq 1 ]; then
    build=build-asan
    # -O1 with line tables only: the sanitizers need no more to report a place, and the build is the larger
    # part of this pass on a 2-core machine.
    # The test programs at -O0 (COGQAT_TEST_OPTIMIZATION): a third of -O1's compile time (the unit tests: 252 ->
    # 74 CPU-s, for a run of 53 -> about 140); the kernels, which the tests run, keep -O1. The tool too at -O0
    # (COGQAT_TOOL_OPTIMIZATION): 155 -> 55 CPU-s to compile, its tests' runs 63 -> 90 s.
    options=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DCOGQAT_SANITIZE=ON -DCOGQAT_BUILD_BENCHMARKS=OFF -DCOGQAT_WERROR=ON
        -DCOGQAT_TEST_OPTIMIZATION=-O0 -DCOGQAT_TOOL_OPTIMIZATION=-O0)
    # The package tests check CMake plumbing, the interop test llama.cpp's agreement and doc_snippets that the
    # docs' programs compile, not memory safety (the same CLI paths run sanitized in the cli test); they run in
    # the Release pass.
    exclude=(-E '^(package_|llamacpp_interop|doc_snippets)')
    # Clang where it is installed: it compiles the sanitized units about a quarter faster than GCC, and the
    # project is then built by both compilers, GCC in the Release pass. A build directory keeps its compiler.
    if [ ! -f "$build/CMakeCache.txt" ] && command -v clang++ >/dev/null 2>&1; then
        options+=(-DCMAKE_CXX_COMPILER=clang++)
    fi
    # Only what the sanitized tests run: the demos, the quality table and the interop programs are built
    # (and warning-checked) in the Release pass, and building them twice costs CI minutes for nothing.
    targets=(--target cogqat_test_programs)
else
    build=build
    # The test programs at -O1 (COGQAT_TEST_OPTIMIZATION): two thirds of -O2's compile time, for runs a few
    # seconds longer; the tool and the SIMD kernels, which the CLI and interop tests run, keep Release's -O3.
    options=(-DCMAKE_BUILD_TYPE=Release -DCOGQAT_WERROR=ON -DCOGQAT_TEST_OPTIMIZATION=-O1)
    exclude=()
    # The test programs in full; the benchmarks and examples through the front end only (every template
    # instantiated, every error and warning reported, no code generated: cmake/cogqatCompileCheck.cmake), in
    # one unit. `cmake --build build` or a program's own target builds them in full.
    targets=(--target cogqat_check_programs)
fi
if [ $build_step -eq 1 ]; then
    cmake -S . -B "$build" "${options[@]}"
    cmake --build "$build" -j "$jobs" "${targets[@]}"
fi
if [ $test_step -eq 1 ]; then
    ctest --test-dir "$build" --output-on-failure -j "$jobs" "${exclude[@]}"
fi
