#!/usr/bin/env python3
"""Turns criterion's saved estimates into the Markdown tables of crdt/BENCHMARKS.md.

Usage: python3 crdt/benches/criterion_table.py [CRITERION_DIR]
(default: $CARGO_TARGET_DIR/criterion, else target/criterion).

For every group it prints ns per element (criterion's median time per iteration divided by
the group's throughput in elements) for each library and size, and the ratio of every other
library's time to gossamer's time (> 1: gossamer is faster). Ratios only mean something
between figures of the same run.
"""

import json
import os
import sys
from pathlib import Path


def load(root: Path):
    """{group: {function: {param: ns_per_element}}}"""
    out = {}
    for est in root.glob("*/*/*/new/estimates.json"):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        tp = bench.get("throughput") or {}
        elements = tp.get("Elements") or tp.get("elements") or 1
        median_ns = json.loads(est.read_text())["median"]["point_estimate"]
        group, function, param = bench["group_id"], bench["function_id"], bench["value_str"]
        out.setdefault(group, {}).setdefault(function, {})[int(param)] = median_ns / elements
    return out


def fmt(ns: float) -> str:
    return f"{ns:,.0f}" if ns >= 100 else f"{ns:.1f}"


def table(group: str, funcs: dict) -> str:
    first = [f for f in ("gossamer", "crdts") if f in funcs]
    names = first + sorted(f for f in funcs if f not in first)
    sizes = sorted({n for f in funcs.values() for n in f})
    head = ["n"] + [f"{f} ns/elem" for f in names]
    if "gossamer" in funcs:
        head += [f"{f} / gossamer" for f in names[1:]]
    lines = [f"### {group}", "", "| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for n in sizes:
        row = [f"{n:,}"] + [fmt(funcs[f][n]) if n in funcs[f] else "—" for f in names]
        if "gossamer" in funcs:
            g = funcs["gossamer"].get(n)
            row += [f"{funcs[f][n] / g:.1f}×" if g and n in funcs[f] else "—" for f in names[1:]]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    default = Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "criterion"
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    data = load(root)
    for group in sorted(data):
        print(table(group, data[group]))
        print()


if __name__ == "__main__":
    main()
