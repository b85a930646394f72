#!/usr/bin/env python3
"""Markdown tables from cogqat_bench_simd's JSON report (--benchmark_format=json --benchmark_out=FILE).

    python3 bench/performance_table.py /tmp/bench_simd.json > tables.md

Throughputs are decimal (1 GB/s = 1e9 bytes/s), counting bytes read plus bytes written; the console
report of Google Benchmark prints bytes_per_second in binary units instead. Standard library only.
"""

import json
import re
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    runs = {}
    for b in report.get("benchmarks", []):
        # Google Benchmark appends the timing mode: "dot/q4_0/manual_time".
        name = re.sub(r"/(manual|real)_time$", "", b.get("run_name") or b["name"])
        # With --benchmark_repetitions, the median stands for the benchmark; otherwise its one run does.
        if b.get("run_type") == "aggregate":
            if b.get("aggregate_name") != "median":
                continue
        elif name in runs and runs[name].get("run_type") == "aggregate":
            continue
        runs[name] = b
    return report.get("context", {}), runs


def ours_of(run):
    for part in run.get("label", "").split():
        if part.startswith("ours:"):
            return part[len("ours:"):]
    return ""


def fmt(value, scale=1.0, digits=2):
    if value is None:
        return "—"
    return f"{value / scale:.{digits}f}"


def ratio(run, key):
    value = run.get(key)
    return "—" if value is None else f"{value:.2f}"


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def family(runs, prefix):
    return [(name[len(prefix):], r) for name, r in runs.items() if name.startswith(prefix)]


def error_row(key, run, width):
    return [key, "error: " + run.get("error_message", "")] + [""] * (width - 2)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    context, runs = load(argv[1])
    sections = []

    caches = ", ".join(f"L{c['level']} {c['size'] // 1024} KiB{' shared by ' + str(c['num_sharing']) if c.get('num_sharing', 1) > 1 else ''}"
                       for c in context.get("caches", []) if c.get("type") != "Instruction")
    sections.append(
        f"Run {context.get('date', '?')} on {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz ({caches}); "
        f"our table: `{context.get('cogqat_simd_isa', '?')}`; ggml: `libggml-cpu-{context.get('ggml_cpu_variant', '?')}`, "
        f"version {context.get('ggml_version', '?') or '?'}; large arrays {int(context.get('stream_bytes', 0)) >> 20} MiB.")

    rows = []
    for key, r in family(runs, "bandwidth/"):
        if r.get("error_occurred"):
            rows.append(error_row(key, r, 4))
            continue
        kind, threads = key.split("/")
        rows.append([kind, threads.lstrip("t"), fmt(r.get("bytes_per_second"), 1e9), fmt(r.get("best_bytes_per_second"), 1e9)])
    sections.append("**Memory probe** (GB/s, read + written)\n\n" + table(["probe", "threads", "mean", "best of 5"], rows))

    rows = []
    for key, r in family(runs, "quantize/"):
        if r.get("error_occurred"):
            rows.append(error_row(key, r, 5))
            continue
        rows.append([key, ours_of(r), fmt(r.get("bytes_per_second"), 1e6, 0), fmt(r.get("ggml_bytes_per_second"), 1e6, 0), ratio(r, "vs_ggml")])
    sections.append("**Quantize** floats → blocks, 256 Ki values (MB/s)\n\n" + table(["format", "ours", "ours MB/s", "ggml_quantize_chunk MB/s", "vs_ggml"], rows))

    for prefix, title, theirs in (("dequantize/", "**Dequantize** blocks → floats, large arrays (GB/s)", "ggml to_float GB/s"),
                                  ("quantize_act/", "**Quantize activations**, large arrays (GB/s)", "ggml from_float GB/s")):
        rows = []
        for key, r in family(runs, prefix):
            if r.get("error_occurred"):
                rows.append(error_row(key, r, 8))
                continue
            type_name, _, threads = key.partition("/")
            rows.append([type_name, threads.lstrip("t") or "1", ours_of(r), fmt(r.get("bytes_per_second"), 1e9), fmt(r.get("ggml_bytes_per_second"), 1e9),
                         ratio(r, "vs_ggml"), ratio(r, "of_bandwidth"), fmt(r.get("bandwidth"), 1e9)])
        sections.append(title + "\n\n" + table(["type", "threads", "ours", "ours GB/s", theirs, "vs_ggml", "of_bandwidth", "copy probe GB/s"], rows))

    rows = []
    for key, r in family(runs, "dot/"):
        if r.get("error_occurred"):
            rows.append(error_row(key, r, 5))
            continue
        rows.append([key, ours_of(r), fmt(r.get("GFLOP/s")), fmt(r.get("ggml_GFLOP/s")), ratio(r, "vs_ggml")])
    sections.append("**Dot product**, 4096 values × Q8 activations, cache-resident (GFLOP/s)\n\n" +
                    table(["format", "ours", "ours GFLOP/s", "ggml vec_dot GFLOP/s", "vs_ggml"], rows))

    rows = []
    for key, r in family(runs, "gemv/"):
        if r.get("error_occurred"):
            rows.append(error_row(key, r, 9))
            continue
        fmt_name, threads = key.split("/")
        rows.append([fmt_name, threads.lstrip("t"), ours_of(r), fmt(r.get("bytes_per_second"), 1e9), fmt(r.get("GFLOP/s")),
                     fmt(r.get("ggml_bytes_per_second"), 1e9), ratio(r, "vs_ggml"), ratio(r, "of_bandwidth"), fmt(r.get("bandwidth"), 1e9)])
    sections.append("**GEMV**, 4096 columns × as many rows as fill the large array (GB/s of weights read)\n\n" +
                    table(["format", "threads", "ours", "ours GB/s", "ours GFLOP/s", "ggml GB/s", "vs_ggml", "of_bandwidth", "read probe GB/s"], rows))

    print("\n\n".join(sections))


if __name__ == "__main__":
    main(sys.argv)
