#!/usr/bin/env python3
"""Compares two `cogqat quantize --auto --json` reports of one model: the per-tensor sensitivities (Spearman rank
correlation per candidate type and over all candidates, f16 left out) and the written files' KL.

    compare_sensitivity.py EXACT.json BLOCKWISE.json

Used to validate `--sensitivity blockwise` against `--sensitivity exact` (docs/datafree.md)."""
import json
import math
import sys


def ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    r = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i + 1
        while j < len(order) and values[order[j]] == values[order[i]]:
            j += 1
        for k in range(i, j):
            r[order[k]] = (i + j - 1) / 2 + 1  # ties share the mean rank, as core/rank_correlation.hpp
        i = j
    return r


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    m = (len(x) + 1) / 2
    sxy = sum((a - m) * (b - m) for a, b in zip(rx, ry))
    sxx = sum((a - m) ** 2 for a in rx)
    syy = sum((b - m) ** 2 for b in ry)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def costs(report):
    out = {}
    for t in report["tensors"]:
        for c in t["sensitivity"]:
            if c["type"] != "f16":
                out[(t["name"], c["type"])] = c["kl"]
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    exact, fast = (json.load(open(p)) for p in sys.argv[1:])
    a, b = costs(exact), costs(fast)
    keys = sorted(set(a) & set(b))
    if len(keys) != len(a) or len(keys) != len(b):
        sys.exit("the reports measure different tensors or types: not of one model and candidate list")
    types = sorted({k[1] for k in keys})
    print("| types | pairs | Spearman |")
    print("| --- | --- | --- |")
    for t in types:
        ks = [k for k in keys if k[1] == t]
        print(f"| {t} | {len(ks)} | {spearman([a[k] for k in ks], [b[k] for k in ks]):.3f} |")
    print(f"| all | {len(keys)} | {spearman([a[k] for k in keys], [b[k] for k in keys]):.3f} |")
    ke, kb = exact["validation"]["kl"], fast["validation"]["kl"]
    print(f"\nbpw {exact['bits_per_weight']:.3f} / {fast['bits_per_weight']:.3f}; file KL exact {ke:.5f}, "
          f"{fast['sensitivity']['method']} {kb:.5f} ({100 * (kb / ke - 1):+.1f}%); "
          f"{len(fast['sensitivity']['checks'])} exact checks")


if __name__ == "__main__":
    main()
