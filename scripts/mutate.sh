#!/usr/bin/env bash
# The mutation campaign: mutated GGUF files through the tool's commands, counting what each did.
#   bash scripts/mutate.sh [SECONDS] [BUILD_DIR]     default: 600 s, build/ (built first if the programs are missing)
# Seeds: stories260K from ../shared converted and quantized (q4_0, q4_K mix), when present, and a generated
# model, F32 and q4_0. Each round mutates one seed (tests/fuzz/mutate.cpp, seeded by the round number, so a
# finding is reproducible) and runs inspect, inspect --json, eval, generate and quantize on it. Outcomes:
#   accepted (exit 0), refused (exit 1 or 2: a message), hang (past the 30 s limit), crash (exit 128 or more:
#   a signal, e.g. SIGSEGV or abort, or a sanitizer's report), other (any other status).
# A crash, hang or other keeps its input in BUILD_DIR/mutate-findings/ and fails the script (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
build="${2:-build}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]]; then
    echo "usage: bash scripts/mutate.sh [SECONDS] [BUILD_DIR]" >&2
    exit 2
fi
cli="$build/bin/cogqat"
mutate="$build/tests/cogqat_mutate"
if [ ! -x "$cli" ] || [ ! -x "$mutate" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j "$(nproc 2>/dev/null || echo 2)" --target cogqat_cli cogqat_mutate >/dev/null
fi
work="$build/mutate-work"
findings="$build/mutate-findings"
rm -rf "$work"
mkdir -p "$work/seeds" "$findings"
shared="${COGQAT_SHARED_DIR:-../shared}"

# Seeds.
"$cli" convert synthetic "$work/seeds/synthetic-f32.gguf" >/dev/null
"$cli" quantize -q "$work/seeds/synthetic-f32.gguf" "$work/seeds/synthetic-q4_0.gguf" --preset q4_0 >/dev/null
text="$work/text.txt"
if [ -f "$shared/models/stories260K/stories260K.bin" ]; then
    "$cli" convert llama2c "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.bin" "$work/seeds/stories-f32.gguf" >/dev/null
    "$cli" quantize -q "$work/seeds/stories-f32.gguf" "$work/seeds/stories-q4_0.gguf" --preset q4_0 >/dev/null
    "$cli" quantize -q "$work/seeds/stories-f32.gguf" "$work/seeds/stories-q4_k_m.gguf" --preset q4_k_m --tensor-type 'ffn_down=q8_0' >/dev/null
    head -c 4000 "$shared/models/tinystories-valid/tinystories_val_part.txt" > "$text"
else
    printf 'Once upon a time, there was a little girl named Lily.\nShe liked to play.\n' > "$text"
fi
seeds=("$work"/seeds/*.gguf)

commands=(inspect inspect-json eval generate quantize)
declare -A accepted refused hang crash other
for c in "${commands[@]}"; do accepted[$c]=0 refused[$c]=0 hang[$c]=0 crash[$c]=0 other[$c]=0; done

run() {  # run NAME -- command...: classify one run
    local name="$1" status=0
    shift
    timeout -k 5 30 "$@" >"$work/out.log" 2>&1 || status=$?
    if [ "$status" -eq 0 ]; then accepted[$name]=$((accepted[$name] + 1))
    elif [ "$status" -eq 1 ] || [ "$status" -eq 2 ]; then refused[$name]=$((refused[$name] + 1))
    elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then hang[$name]=$((hang[$name] + 1)); keep "$name" hang "$status"
    elif [ "$status" -ge 128 ]; then crash[$name]=$((crash[$name] + 1)); keep "$name" crash "$status"
    else other[$name]=$((other[$name] + 1)); keep "$name" other "$status"
    fi
}
keep() {
    local file="$findings/round$round-$1-$2-$3.gguf"
    cp "$work/m.gguf" "$file"
    cp "$work/out.log" "$file.log"
    echo "mutate.sh: $2 (exit $3) in $1 on round $round (seed $seed_file): $file" >&2
}

end=$((SECONDS + seconds))
round=0
while [ $SECONDS -lt $end ]; do
    round=$((round + 1))
    seed_file="${seeds[$((round % ${#seeds[@]}))]}"
    "$mutate" "$round" "$seed_file" "$work/m.gguf"
    rm -f "$work/o.gguf"
    run inspect "$cli" inspect "$work/m.gguf"
    run inspect-json "$cli" inspect --json "$work/m.gguf"
    run eval "$cli" eval "$work/m.gguf" --text "$text" --ctx 32 --max-tokens 96 -j 1
    run generate "$cli" generate "$work/m.gguf" -p "Once upon a time" -n 8 -j 1
    run quantize "$cli" quantize -q -j 1 "$work/m.gguf" "$work/o.gguf" --preset q4_k_m
done

printf '%-13s %9s %9s %6s %6s %6s\n' command accepted refused hangs crashes other
bad=0
for c in "${commands[@]}"; do
    printf '%-13s %9d %9d %6d %6d %6d\n' "$c" "${accepted[$c]}" "${refused[$c]}" "${hang[$c]}" "${crash[$c]}" "${other[$c]}"
    bad=$((bad + hang[$c] + crash[$c] + other[$c]))
done
echo "mutate.sh: $round mutated files in $seconds s; $bad crashes, hangs or unexpected statuses"
[ "$bad" -eq 0 ]
