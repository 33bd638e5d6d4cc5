#!/usr/bin/env python3
"""Prints the operator profile that `bench_train_step --profile FILE` writes: self time (without
the operators an operator called), total time and calls, largest self time first, summed by
operator, or by operator and input shapes with --shapes.

  scripts/profile_summary.py PROFILE [--shapes] [--top N]
"""
import argparse
import collections
import json
import sys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--shapes", action="store_true", help="one row per operator and input shapes")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with open(args.profile) as f:
        rows = json.load(f)
    sums = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for r in rows:
        key = f"{r['op']} {json.dumps(r['shapes'], separators=(',', ':'))}" if args.shapes else r["op"]
        s = sums[key]
        s[0] += r["self_ms"]
        s[1] += r["total_ms"]
        s[2] += r["calls"]
    whole = sum(s[0] for s in sums.values()) or 1.0
    width = 90 if args.shapes else 48
    print(f"{'operator':<{width}} {'self ms':>9} {'share':>6} {'total ms':>9} {'calls':>7}")
    for key in sorted(sums, key=lambda k: sums[k][0], reverse=True)[: args.top]:
        self_ms, total_ms, calls = sums[key]
        print(f"{key[:width]:<{width}} {self_ms:>9.1f} {self_ms / whole:>6.1%} {total_ms:>9.1f} {calls:>7}")
    print(f"{'all operators (self)':<{width}} {whole:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
