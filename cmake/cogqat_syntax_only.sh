#!/usr/bin/env bash
# Compiler launcher for the compile checks (cmake/cogqatCompileCheck.cmake): runs the compile command with
# -fsyntax-only, which parses, instantiates every template and reports every front-end error and warning but
# generates no code, then leaves an empty object file so that the build tool sees the step done.
set -euo pipefail
output="" previous=""
for argument in "$@"; do
    [ "$previous" = "-o" ] && output=$argument
    previous=$argument
done
"$@" -fsyntax-only
[ -z "$output" ] || : > "$output"
