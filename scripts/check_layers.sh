#!/usr/bin/env bash
# Checks that the library's includes point one way, down the layers, and that the instruction-set-only
# headers are included only where they may be (docs/architecture.md). Run by the test command; exit 1 with
# one line per offending include.
#
#   layer (low to high)   folders of include/cogqat/
#   0 core                core            policies, errors, threads, fp16, rounding, checked sizes, memory, UTF-8
#   1 dispatch            dispatch        the run-time table of SIMD kernels: baseline code, no instruction set
#   2 format              format          the GGUF block formats, their reference arithmetic
#   3 kernels             simd            SIMD products over whole matrices (baseline) and, in simd/isa/, the
#                                         per-instruction-set kernels
#   4 loss                loss            KL divergence, cross-entropy
#   5 model               model           the Llama runtime, its backward pass, the tokenizer
#   6 calib               calib           calibration data from the model itself, calibrators
#   7 io                  io gguf         files: GGUF, llama2.c, llama GGUF in and out, all-or-nothing writes
#   8 quant               quant           the generic quantizer, GPTQ, the mixed policy, the quantize job
#   9 qat                 qat             data-free auto quantization, QAT, bit allocation
#  10 cog                 cog             AtomSpace, ECAN, MOSES over quantized values
# A header may include headers of its own layer (io and gguf are one) and of lower layers. cogqat.hpp, the umbrella, includes all.
# simd/isa/ headers need their instruction set's flags: only simd/isa/ itself includes them, and the units that
# cogqat_simd_dispatch() generates include simd/isa/register.hpp.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A rank=([core]=0 [dispatch]=1 [format]=2 [simd]=3 [loss]=4 [model]=5 [calib]=6 [io]=7 [gguf]=7 [quant]=8 [qat]=9 [cog]=10)
declare -A name=([0]=core [1]=dispatch [2]=format [3]=kernels [4]=loss [5]=model [6]=calib [7]=io [8]=quant [9]=qat [10]=cog)
status=0
fail() {
    echo "check_layers: $1" >&2
    status=1
}

# Every library header sits in a known layer.
while IFS= read -r header; do
    folder=${header#include/cogqat/}
    folder=${folder%%/*}
    [ -n "${rank[$folder]+set}" ] || fail "$header: folder '$folder' is in no layer (add it to scripts/check_layers.sh and docs/architecture.md)"
done < <(find include/cogqat -mindepth 2 -name '*.hpp' | sort)

# Includes point down.
while IFS=: read -r header line target; do
    from=${header#include/cogqat/}
    from=${from%%/*}
    to=${target#cogqat/}
    to=${to%%/*}
    [ -n "${rank[$from]+set}" ] && [ -n "${rank[$to]+set}" ] || continue
    if [ "${rank[$to]}" -gt "${rank[$from]}" ]; then
        fail "$header:$line includes $target: ${name[${rank[$from]}]} (layer ${rank[$from]}) must not include ${name[${rank[$to]}]} (layer ${rank[$to]})"
    fi
done < <(grep -rnoE '#include [<"]cogqat/[a-z_]+/[a-z_/]+\.hpp' include/cogqat --include='*.hpp' | sed -E 's/:#include [<"]/:/' | grep -v '^include/cogqat/cogqat.hpp:')

# Instruction-set-only headers stay among themselves.
while IFS=: read -r file line target; do
    case "$file" in
        include/cogqat/simd/isa/*) ;;
        cmake/cogqatSimd.cmake) [ "$target" = "cogqat/simd/isa/register.hpp" ] || fail "$file:$line includes $target: generated units include only simd/isa/register.hpp" ;;
        *) fail "$file:$line includes $target: simd/isa/ headers need their instruction set's flags; only units built for it may include them" ;;
    esac
done < <(grep -rnoE '#include [<"]cogqat/simd/isa/[a-z_]+\.hpp' include tools tests bench examples cmake 2>/dev/null | sed -E 's/:#include [<"]/:/')

# Every header in simd/isa/ says so in its opening comment.
while IFS= read -r header; do
    head -n 30 "$header" | grep -q 'Include only in a unit compiled for' || fail "$header: an instruction-set-only header that does not say so in its opening comment"
done < <(find include/cogqat/simd/isa -name '*.hpp' 2>/dev/null | sort)

if [ "$status" -eq 0 ]; then
    echo "check_layers: $(find include/cogqat -name '*.hpp' | wc -l) headers, every include points down a layer"
fi
exit "$status"
