#!/usr/bin/env bash
# Compiles every complete C++ program in docs/ (a ```cpp block that defines main) against the headers, with
# the warnings a strict user turns on as errors, so that an example the docs show cannot rot. Fragments
# (blocks without main) are not compiled. Run by the test command: check_doc_snippets.sh <C++ compiler>.
#
# The programs compile as one unit: each block's includes at file scope, its code in a namespace of its own
# (where its main is an ordinary function, given a return), under #line directives that name the document
# and line, so that a compiler error points into docs/. Parsing the library's headers once instead of once
# per block is most of this test's time (74 -> about 15 CPU-s for 14 programs with GCC 12). What one unit
# cannot show is a block that forgets an include another block makes.
set -euo pipefail
cd "$(dirname "$0")/.."
compiler=${1:-c++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unit="$work/doc_programs.cpp"
awk -v count_file="$work/count" '
    /^```cpp[[:space:]]*$/ { inside = 1; in_main = 0; start = FNR; includes = ""; body = ""; next }
    /^```[[:space:]]*$/ && inside {
        inside = 0
        if (body ~ /int main[[:space:]]*\(/) {
            printf "%s", includes
            printf "namespace cogqat_doc_program_%d {\n#line %d \"%s\"\n%s}\n", ++count, start + 1, FILENAME, body
        }
        next
    }
    # An include keeps its line: it becomes a blank one in the body, so that #line stays exact.
    inside && /^[[:space:]]*#[[:space:]]*include/ {
        includes = includes sprintf("#line %d \"%s\"\n%s\n", FNR, FILENAME, $0); body = body "\n"; next
    }
    # In a namespace main is an ordinary function, which must return: its closing brace (the first at the
    # start of a line after its head) gets a return, unreachable where the block has one of its own.
    inside && /^int main[[:space:]]*\(/ { in_main = 1 }
    inside && in_main && /^}/ { in_main = 0; body = body "return 0;" $0 "\n"; next }
    inside { body = body $0 "\n" }
    END { print count + 0 > count_file }
' docs/*.md > "$unit"
count=$(cat "$work/count")
if [ "$count" -eq 0 ]; then
    echo "check_doc_snippets: no complete program found in docs/" >&2
    exit 1
fi
if ! "$compiler" -std=c++20 -fsyntax-only -Iinclude -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Werror \
    "$unit" 2> "$work/errors.log"; then
    echo "check_doc_snippets: the programs in docs/ do not compile (places are docs/ lines):" >&2
    head -n 40 "$work/errors.log" >&2
    exit 1
fi
echo "check_doc_snippets: $count complete programs in docs/ compile"
