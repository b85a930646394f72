#!/usr/bin/env bash
# `mpirun -np N cogqat quantize --auto` writes the bytes one process writes with the same settings, for two and
# three ranks, measured one layer at a time and on the whole model; a command that does not share its work is
# refused under several ranks, and every rank ends. Usage: auto_ranks.sh COGQAT MPIEXEC
source "$(dirname "$0")/launch.sh"

"$cogqat" convert synthetic "$dir/m.gguf" --seed 5 --dim 64 --ffn 96 --layers 2 --heads 4 --kv-heads 2 >/dev/null
for streaming in on off; do
    settings=(--auto --target-bpw 5.5 --calib-tokens 96 --candidates q4_0,q5_1,q8_0 --sensitivity blockwise --stream-layers "$streaming"
              --accuracy-threshold 0 -q)
    "$cogqat" quantize "$dir/m.gguf" "$dir/one.gguf" "${settings[@]}" -j 2 >/dev/null
    for n in 2 3; do
        "${launch[@]}" -np "$n" "$cogqat" quantize "$dir/m.gguf" "$dir/ranks-$n.gguf" "${settings[@]}" -j 1 --json "$dir/ranks-$n.json" \
            >/dev/null
        cmp "$dir/one.gguf" "$dir/ranks-$n.gguf"
        grep -q "\"processes\": $n" "$dir/ranks-$n.json" || { echo "auto_ranks: the report of $n ranks does not say $n processes" >&2; exit 1; }
    done
    echo "auto_ranks: --stream-layers $streaming: 2 and 3 ranks wrote the bytes of one process"
done

if "${launch[@]}" -np 2 "$cogqat" quantize "$dir/m.gguf" "$dir/x.gguf" --preset q4_0 -q >"$dir/refused.txt" 2>&1; then
    echo "auto_ranks: quantize --preset ran on 2 ranks" >&2
    exit 1
fi
grep -q "run this command as one process" "$dir/refused.txt" || { cat "$dir/refused.txt" >&2; exit 1; }
[ ! -e "$dir/x.gguf" ] || { echo "auto_ranks: the refused command wrote its output" >&2; exit 1; }
echo "auto_ranks: quantize --preset refused on 2 ranks"
