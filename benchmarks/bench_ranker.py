"""Multi-task ranker vs popularity and logistic regression on KuaiRand-1K (random exposure).

Usage: ``python benchmarks/bench_ranker.py [--json FILE] [--seeds N ...]``; with one
seed the same as ``trustfeed bench ranker --seed N``; with several (default 0 1 2) each
number is the mean ± sd over them, so the noise is visible.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trustfeed.bench._ranker_bench import run_and_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    run_and_report(args.json, seeds=tuple(args.seeds))


if __name__ == "__main__":
    main()
