#!/usr/bin/env bash
# Checks that the C++ sources follow .clang-format (clang-format 14, whose output the tree was formatted with:
# other versions break lines differently). Run by the test command; exit 1 naming each file that is not
# formatted, and how to fix it.
set -euo pipefail
cd "$(dirname "$0")/.."

format=""
for candidate in clang-format-14 clang-format; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" --version | grep -q 'version 14\.'; then
        format=$candidate
        break
    fi
done
if [ -z "$format" ]; then
    echo "check_format: clang-format 14 not found (Debian: apt-get install clang-format-14)" >&2
    exit 1
fi

if [ -d .git ] && command -v git >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files -- '*.hpp' '*.cpp' '*.h' '*.cu' '*.cuh')
else
    mapfile -t files < <(find include tests tools examples bench -path '*/node_modules' -prune -o \( -name '*.hpp' -o -name '*.cpp' -o -name '*.cu' \) -print)
fi
# One run over every file; its warnings start with the file's path.
if ! report=$("$format" --style=file --dry-run --Werror "${files[@]}" 2>&1); then
    grep -oE '^[^:]+\.(hpp|cpp|h|cu|cuh):' <<<"$report" | sort -u | while read -r f; do
        echo "check_format: ${f%:} is not formatted (run: $format -i --style=file ${f%:})" >&2
    done
    exit 1
fi
