#!/usr/bin/env bash
# Checks that no per-instruction-set unit of a SIMD kernel library exports code of ours that baseline code
# could end up running.
#
# Usage: scripts/check_isa_symbols.sh <kernel library or object files>...
#
# A per-ISA unit (cogqat_add_simd_kernels() names it <library>_isa_<set>.cpp) is compiled with its set's
# flags. Every inline function or template it emits out of line is a weak definition; the linker keeps one
# copy of each name for the whole program. If a baseline unit calls the same function, the linker may keep
# the AVX-512 copy for it (link order, LTO), and scalar code runs AVX-512 instructions on a CPU without them.
# So every weak symbol (nm: W, V, u) of such a unit must name the unit's own instruction-set tag,
# cogqat::simd::isa<...>: then it is that set's alone. That covers our inline functions, templates on anything
# else (an xsimd architecture alone is shared by the AVX-512 and AVX-512 VNNI units), and the standard
# library's templates (std::vector<float>'s growth compiled for AVX-512 would serve baseline code too). The
# compilers' own helpers hold no vector code and are let through: DW.ref.__gxx_personality_v0 (a pointer),
# __clang_call_terminate (calls std::terminate).
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 <kernel library or object files>..." >&2
    exit 2
fi
nm_tool=${NM:-nm}

# The tag of each set as nm -C prints it (the same for GCC's and Clang's objects: the demangler is binutils').
tag_of() {
    case $1 in
        sse4_2) echo 'cogqat::simd::isa<xsimd::sse4_2, false>' ;;
        avx2) echo 'cogqat::simd::isa<xsimd::fma3<xsimd::avx2>, false>' ;;
        avx512) echo 'cogqat::simd::isa<xsimd::avx512bw, false>' ;;
        avx512_vnni) echo 'cogqat::simd::isa<xsimd::avx512bw, true>' ;;
        neon) echo 'cogqat::simd::isa<xsimd::neon64, false>' ;;
        *) return 1 ;;
    esac
}

status=0
units=0
for file in "$@"; do
    if [ ! -f "$file" ]; then
        echo "check_isa_symbols: $file: no such file" >&2
        exit 2
    fi
    # One line per defined symbol, "<file>[:<member>]:<value> <type> <name>" (nm -A), made
    # "<member>\t<type>\t<name>".
    listing=$("$nm_tool" -A -C --defined-only "$file" | sed -n 's/^\([^ ]*\):[0-9a-fA-F]\{1,\} \([A-Za-z]\) \(.*\)$/\1\t\2\t\3/p')
    members=$(printf '%s\n' "$listing" | cut -f1 | sort -u)
    for member in $members; do
        isa=$(printf '%s\n' "$member" | sed -n 's/.*_isa_\([a-z0-9_]*\)\.[A-Za-z0-9_.]*$/\1/p')
        [ -n "$isa" ] || continue  # a baseline unit (the registration): compiled without ISA flags
        if ! tag=$(tag_of "$isa"); then
            echo "check_isa_symbols: $member: unknown instruction set '$isa'" >&2
            status=1
            continue
        fi
        units=$((units + 1))
        bad=$(printf '%s\n' "$listing" | awk -F '\t' -v m="$member" '$1 == m && ($2 == "W" || $2 == "V" || $2 == "u") { print $3 }' |
            grep -vF "$tag" | grep -vE '^(DW\.ref\.|__clang_call_terminate$)' || true)
        if [ -n "$bad" ]; then
            status=1
            echo "check_isa_symbols: $member (compiled for $isa) defines code that is not $isa's alone:"
            printf '%s\n' "$bad" | sort -u | sed 's/^/    /'
        fi
    done
done

if [ "$units" -eq 0 ]; then
    echo "check_isa_symbols: no per-ISA unit (*_isa_<set>.o) in $*: pass the kernel library cogqat_add_simd_kernels() builds" >&2
    exit 2
fi
if [ $status -ne 0 ]; then
    cat <<'MSG'

Each symbol above is an inline function (or a template on something other than the instruction set) that a
kernel calls and the compiler emitted out of line, compiled with that unit's instruction-set flags. Another
unit emits the same name with other flags, and the linker keeps one copy for the whole program, so scalar
code can run these instructions. Fix it in simd/isa/ (docs/simd.md, "Rules for kernel code"):
  - a standard container or algorithm in a kernel (std::vector, std::sort): use a fixed-size array or a
    buffer the caller passes, or do that step in the baseline caller;
  - a helper of the kernels: make it a template on the instruction set, template <class Isa>, called f<Isa>();
    a helper on an xsimd architecture takes the Isa and uses typename Isa::arch inside;
  - a function of the library below the kernels (a format's scale loader, a reference step): call it through a
    wrapper templated on the Isa that inlines it whole (simd/isa/baseline_call.hpp, COGQAT_ISA_INLINE_ALL), or
    call it in baseline code and hand the kernel its result;
  - constant data: a variable template on the Isa.
MSG
    exit 1
fi
echo "check_isa_symbols: $units per-ISA unit(s), every weak symbol names its unit's own instruction set"
