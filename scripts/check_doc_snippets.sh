#!/usr/bin/env bash
# Compiles every complete C++ program in docs/ (a ```cpp block that defines main) against the headers, with
# the warnings a strict user turns on as errors, so that an example the docs show cannot rot. Fragments
# (blocks without main) are not compiled. Run by the test command: check_doc_snippets.sh <C++ compiler>.
set -euo pipefail
cd "$(dirname "$0")/.."
compiler=${1:-c++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=0
status=0
for doc in docs/*.md; do
    # Each block to its own file, named after the document and the block's first line.
    awk -v dir="$work" -v doc="$(basename "$doc" .md)" '
        /^```cpp[[:space:]]*$/ { inside = 1; start = NR; text = ""; next }
        /^```[[:space:]]*$/ && inside {
            inside = 0
            if (text ~ /int main[[:space:]]*\(/) { file = dir "/" doc "_line" start ".cpp"; printf "%s", text > file; close(file) }
            next
        }
        inside { text = text $0 "\n" }
    ' "$doc"
done
for snippet in "$work"/*.cpp; do
    [ -e "$snippet" ] || continue
    count=$((count + 1))
    name=$(basename "$snippet" .cpp)
    if ! "$compiler" -std=c++20 -fsyntax-only -Iinclude -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Werror \
        "$snippet" 2> "$work/$name.log"; then
        echo "check_doc_snippets: docs/${name%_line*}.md, the block opening at line ${name##*_line}, does not compile:" >&2
        head -n 30 "$work/$name.log" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "check_doc_snippets: $count complete programs in docs/ compile"
exit $status
