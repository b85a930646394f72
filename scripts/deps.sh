# shellcheck shell=bash
# The Debian packages cogqat builds with. Sourced by the other scripts: cogqat_install_deps installs
# whichever are missing (as root, or through sudo), and says what to install where it cannot.

COGQAT_PACKAGES=(cmake make g++ clang-format-14 libxsimd-dev doctest-dev libbenchmark-dev libcli11-dev libfmt-dev nlohmann-json3-dev librocksdb-dev libopenmpi-dev openmpi-bin)

cogqat_install_deps() {
    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "cogqat: not a Debian system; make sure these (or their equivalents) are installed: ${COGQAT_PACKAGES[*]}" >&2
        return 0
    fi
    local missing=() package
    for package in "${COGQAT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "cogqat: installing ${missing[*]}" >&2
    local run_as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            run_as_root=(sudo)
        else
            echo "cogqat: missing packages (${missing[*]}) and not root: run as root or install them first" >&2
            return 1
        fi
    fi
    "${run_as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${run_as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# node-llama-cpp (a prebuilt llama.cpp) for the interop tests, into tests/interop/node_modules. Optional:
# without npm or the registry, those tests are skipped and say why.
cogqat_install_llamacpp() {
    local dir=tests/interop
    [ -f "$dir/node_modules/node-llama-cpp/package.json" ] && return 0
    if ! command -v npm >/dev/null 2>&1; then
        echo "cogqat: npm not found; the llama.cpp interop tests will be skipped" >&2
        return 0
    fi
    echo "cogqat: installing node-llama-cpp 3.22.1 into $dir (npm)" >&2
    (cd "$dir" && npm install --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
        echo "cogqat: npm install failed; the llama.cpp interop tests will be skipped" >&2
}

# Debian's unicode-data (UnicodeData.txt), which scripts/gen_unicode_data.py (Python 3) reads to regenerate
# include/cogqat/core/unicode_data.hpp. Not needed to build or test: the generated header is committed.
cogqat_install_generator_deps() {
    local COGQAT_PACKAGES=(unicode-data)
    cogqat_install_deps
}
