#!/usr/bin/env python3
"""Per-op summary of a conformance index written by generate.py (a sanity tool).

    scripts/conformance/ops_report.py OUT_DIR/index.json [--ops Conv,Relu,...] [--cases]

One row per op type under test (sorted): the number of cases, of float cases (every input and
output float32/float16/float64), of function-expansion (``_expanded``) cases and of skipped
cases, then a total row. ``--cases`` also lists each op's case names (``*`` marks a skipped one).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path


def summarize(records):
    rows = defaultdict(lambda: {"cases": 0, "float": 0, "expanded": 0, "skipped": 0, "names": []})
    for r in records:
        op = r["op_type"] if not r.get("domain") else f"{r['domain']}:{r['op_type']}"
        row = rows[op]
        row["cases"] += 1
        row["float"] += bool(r.get("float"))
        row["expanded"] += bool(r.get("expanded"))
        row["skipped"] += r.get("skipped") is not None
        row["names"].append(r["case"] + ("*" if r.get("skipped") is not None else ""))
    return dict(sorted(rows.items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("index", type=Path, help="index.json written by generate.py")
    ap.add_argument("--ops", default="", help="comma-separated op types to show (default: all)")
    ap.add_argument("--cases", action="store_true", help="list the case names of each op")
    args = ap.parse_args(argv)

    records = json.loads(args.index.read_text())
    rows = summarize(records)
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    if ops:
        missing = [o for o in ops if o not in rows]
        rows = {o: rows[o] for o in ops if o in rows}
        for o in missing:
            print(f"warning: no cases for {o}", file=sys.stderr)

    width = max([len("op_type")] + [len(k) for k in rows])
    print(f"{'op_type':<{width}}  {'cases':>5}  {'float':>5}  {'expanded':>8}  {'skipped':>7}")
    tot = {"cases": 0, "float": 0, "expanded": 0, "skipped": 0}
    for op, row in rows.items():
        print(f"{op:<{width}}  {row['cases']:>5}  {row['float']:>5}  {row['expanded']:>8}  "
              f"{row['skipped']:>7}")
        for k in tot:
            tot[k] += row[k]
    print(f"{'TOTAL (' + str(len(rows)) + ' ops)':<{width}}  {tot['cases']:>5}  {tot['float']:>5}  "
          f"{tot['expanded']:>8}  {tot['skipped']:>7}")
    if args.cases:
        for op, row in rows.items():
            print(f"\n{op}:")
            for name in row["names"]:
                print(f"  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
