#!/usr/bin/env bash
# `mpirun -np N cogqat qat --blockwise` writes the bytes one process writes with the same settings, for two and
# three ranks (three do not divide the four gradient groups evenly), and a failure on the ranks ends them all
# with the error. Usage: qat_ranks.sh COGQAT MPIEXEC
source "$(dirname "$0")/launch.sh"

"$cogqat" convert synthetic "$dir/m.gguf" --seed 3 --dim 64 --ffn 96 --layers 2 --heads 4 --kv-heads 2 >/dev/null
settings=(--blockwise --steps-per-layer 4 --samples 8 --batch 4 --seq-len 16 -q)
"$cogqat" qat "$dir/m.gguf" "$dir/one.gguf" "${settings[@]}" -j 2 >/dev/null
for n in 2 3; do
    "${launch[@]}" -np "$n" "$cogqat" qat "$dir/m.gguf" "$dir/ranks-$n.gguf" "${settings[@]}" -j 1 --json "$dir/ranks-$n.json" >/dev/null
    cmp "$dir/one.gguf" "$dir/ranks-$n.gguf"
    grep -q "\"processes\": $n" "$dir/ranks-$n.json" || { echo "qat_ranks: the report of $n ranks does not say $n processes" >&2; exit 1; }
done
echo "qat_ranks: 2 and 3 ranks wrote the bytes of one process"

# Commands that do not share their work are refused under several ranks, and every rank ends.
if "${launch[@]}" -np 2 "$cogqat" qat "$dir/m.gguf" "$dir/x.gguf" --steps 1 -q >"$dir/refused.txt" 2>&1; then
    echo "qat_ranks: qat without --blockwise ran on 2 ranks" >&2
    exit 1
fi
grep -q "runs block-wise only" "$dir/refused.txt" || { cat "$dir/refused.txt" >&2; exit 1; }
echo "qat_ranks: qat without --blockwise refused on 2 ranks"
