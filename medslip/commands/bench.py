"""``medslip bench TARGET``: run one benchmark and write its CSV under results/benchmarks/."""

from __future__ import annotations

import argparse
import importlib

NAME = "bench"
HELP = "run a benchmark (results land in results/benchmarks/)"

# target -> "module:function"; the function takes the remaining argv list and returns an exit code.
BENCHMARKS: dict[str, str] = {
    "data": "medslip.data.bench:main",
    "eval": "medslip.evaluate.bench:main",
    "reports": "medslip.benchmarks.reports:main",
    "synth": "medslip.synth.bench:main",
    "train": "medslip.train.bench:main",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=sorted(BENCHMARKS), help="what to benchmark")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options of the benchmark")


def run(args: argparse.Namespace) -> int:
    module, func = BENCHMARKS[args.target].split(":")
    return int(getattr(importlib.import_module(module), func)(args.rest) or 0)
