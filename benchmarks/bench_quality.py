"""Ours against the peer recommenders on ml-100k and Amazon Beauty.

Run from the repository root (needs the ``bench`` extra and ``../shared/datasets``,
or ``TRUSTFEED_DATASETS_DIR``)::

    .venv/bin/python benchmarks/bench_quality.py [--json-dir DIR]

The same as ``trustfeed bench quality --dataset ml-100k`` then ``--dataset beauty``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trustfeed.bench import run_quality
from trustfeed.settings import load_settings

DATASETS = ("ml-100k", "beauty")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json-dir", type=Path, help="write <dataset>.json files here")
    parser.add_argument("--models", help="comma-separated subset (default: all)")
    args = parser.parse_args()
    settings = load_settings()
    models = args.models.split(",") if args.models else None
    for dataset in DATASETS:
        json_path = args.json_dir / f"{dataset}.json" if args.json_dir else None
        run_quality(dataset, settings.datasets_dir, models, seed=settings.seed, json_path=json_path)


if __name__ == "__main__":
    main()
