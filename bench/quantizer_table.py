#!/usr/bin/env python3
"""The generic quantizer's table from cogqat_bench_policy's JSON report (--benchmark_format=json --benchmark_out=FILE).

    build/bench/cogqat_bench_policy --benchmark_filter=quantizer/ --benchmark_format=json --benchmark_out=/tmp/q.json
    python3 bench/quantizer_table.py /tmp/q.json > table.md

One row per bit width x granularity x mode: quantize (one thread) and dequantize (one and two threads), each
with Scalar ms, Simd ms, vs_scalar (median of per-iteration ratios) and of_bandwidth (Simd against the copy
probe on as many threads). Standard library only.
"""

import json
import re
import sys

GRANULARITIES = ["per_tensor", "per_row", "group32", "group128", "super256_32"]
MODES = ["symmetric", "asymmetric"]


def load(path):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    runs = {}
    for b in report.get("benchmarks", []):
        name = re.sub(r"(/min_time:[0-9.]+)?/(manual|real)_time$", "", b.get("run_name") or b["name"])
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        runs[name] = b
    return report.get("context", {}), runs


def cells(run):
    if run is None or run.get("error_occurred"):
        return ["–"] * 4
    return [f"{run['scalar_ms']:.2f}", f"{run['simd_ms']:.2f}", f"{run['vs_scalar']:.1f}", f"{run['of_bandwidth']:.2f}"]


def main(path):
    context, runs = load(path)
    isa = next((r.get("label", "") for r in runs.values() if r.get("label")), "")
    print(f"Host: {context.get('host_name', '?')}, {context.get('num_cpus', '?')} CPUs, kernels: {isa}, {context.get('date', '')}")
    print()
    head = ["bits", "granularity", "mode"]
    for part in ["quantize t1", "dequantize t1", "dequantize t2"]:
        head += [f"{part} Scalar ms", "Simd ms", "vs_scalar", "of_bandwidth"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    worst = {"quantize": None, "dequantize": None}
    for bits in range(2, 9):
        for g in GRANULARITIES:
            for mode in MODES:
                key = f"{bits}/{g}/{mode}"
                q = runs.get(f"quantizer/quantize/{key}")
                d1 = runs.get(f"quantizer/dequantize/{key}/t1")
                d2 = runs.get(f"quantizer/dequantize/{key}/t2")
                if q is None and d1 is None and d2 is None:
                    continue
                print("| " + " | ".join([str(bits), g, mode] + cells(q) + cells(d1) + cells(d2)) + " |")
                if q and not q.get("error_occurred"):
                    v = q["vs_scalar"]
                    worst["quantize"] = v if worst["quantize"] is None else min(worst["quantize"], v)
                for d in (d1, d2):
                    if d and not d.get("error_occurred"):
                        v = d["of_bandwidth"]
                        worst["dequantize"] = v if worst["dequantize"] is None else min(worst["dequantize"], v)
    print()
    if worst["quantize"] is not None:
        print(f"Lowest quantize vs_scalar: {worst['quantize']:.1f}; lowest dequantize of_bandwidth: {worst['dequantize']:.2f}.")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
