"""``medslip bench TARGET``: run one benchmark and write its CSV under results/benchmarks/."""

from __future__ import annotations

import argparse
import importlib

NAME = "bench"
HELP = "run a benchmark (results land in results/benchmarks/)"

TARGETS = ("data", "eval", "existence", "predict", "preset", "reports", "synth", "train")
"""Each target's module is ``medslip.benchmarks.<target>``; its ``main`` takes the remaining argv
list and returns an exit code."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=TARGETS, help="what to benchmark")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options of the benchmark")


def run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"medslip.benchmarks.{args.target}")
    return int(module.main(args.rest) or 0)
