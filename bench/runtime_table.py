#!/usr/bin/env python3
"""The Markdown table of docs/PERFORMANCE.md's runtime section, from cogqat_bench_runtime's JSON output.

    python3 bench/runtime_table.py RESULTS.json [--command "the command that produced it"]

One row per file and thread count: our prompt-processing and generation tokens/s, llama.cpp's, the ratios
(ours / llama.cpp's, the median of per-iteration pairs), and for 4-bit files our generation speed over our
own on the same model's F32 file. Standard library only.
"""

import argparse
import json
import re
import sys

NAME = re.compile(r"^(pp|tg)/(?P<file>[^/]+)/(?P<tokens>\d+)/t(?P<threads>\d+)")


def number(value, digits=1):
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="cogqat_bench_runtime --benchmark_format=json (or --benchmark_out) output")
    parser.add_argument("--command", help="the command line to print under the table")
    args = parser.parse_args()
    with open(args.results, encoding="utf-8") as f:
        data = json.load(f)

    rows = {}
    order = []
    for b in data.get("benchmarks", []):
        m = NAME.match(b.get("name", ""))
        if not m or b.get("error_occurred"):
            continue
        key = (m["file"], int(m["threads"]))
        if key not in rows:
            rows[key] = {"holds": b.get("label", ""), "mb": b.get("file_mb")}
            order.append(key)
        phase = b["name"][:2]
        rows[key][phase] = {
            "tokens": int(m["tokens"]),
            "ours": b.get("tokens_per_second"),
            "theirs": b.get("llamacpp_tokens_per_second"),
            "vs": b.get("vs_llamacpp"),
            "own_f32": b.get("vs_own_f32"),
        }
    if not rows:
        sys.exit(f"{args.results}: no pp/ or tg/ benchmarks")

    def cell(key, phase, field):
        return rows[key].get(phase, {}).get(field)

    def per_model(phase):
        counts = {}
        for (file, _), r in rows.items():
            if phase in r:
                counts.setdefault(file.split("-")[0], r[phase]["tokens"])
        return ", ".join(f"{n} ({model})" for model, n in counts.items())
    print(f"| file | holds | MB | threads | ours pp | llama.cpp pp | pp ratio | ours tg | llama.cpp tg | tg ratio | tg vs own F32 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key in order:
        r = rows[key]
        mb = r["mb"]
        print(f"| {key[0]} | {r['holds']} | {number(mb, 2 if mb is not None and mb < 10 else 0)} | {key[1]} "
              f"| {number(cell(key, 'pp', 'ours'))} | {number(cell(key, 'pp', 'theirs'))} | {ratio(cell(key, 'pp', 'vs'))} "
              f"| {number(cell(key, 'tg', 'ours'))} | {number(cell(key, 'tg', 'theirs'))} | {ratio(cell(key, 'tg', 'vs'))} "
              f"| {ratio(cell(key, 'tg', 'own_f32'))} |")

    context = data.get("context", {})
    print()
    print("Tokens per second (median iteration); ratios are ours / llama.cpp's (the median of per-iteration pairs). "
          f"pp: prompt processing of {per_model('pp')} tokens into an empty cache; "
          f"tg: {per_model('tg')} tokens generated one at a time after an 8-token prompt.")
    machine = f"{context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz"
    caches = ", ".join(f"L{c['level']} {c['type'].lower()} {c['size'] // 1024} KiB" for c in context.get("caches", []))
    load = context.get("load_avg")
    print(f"Machine: {machine} ({caches}); SIMD: {context.get('simd_isa', '?')}; node {context.get('node', '?')}; "
          f"load average at start {', '.join(f'{v:.1f}' for v in load) if load else '?'}; {context.get('date', '')}.")
    if args.command:
        print(f"Command: `{args.command}`")


if __name__ == "__main__":
    main()
