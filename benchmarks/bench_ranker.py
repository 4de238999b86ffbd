"""Multi-task ranker vs popularity and logistic regression on KuaiRand-1K (random exposure).

Usage: ``python benchmarks/bench_ranker.py [--json FILE] [--seed N]``; the same as
``trustfeed bench ranker``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trustfeed.bench._ranker_bench import run_and_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_and_report(args.json, seed=args.seed)


if __name__ == "__main__":
    main()
