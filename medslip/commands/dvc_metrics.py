"""``medslip dvc-metrics KIND``: DVC metrics or plot data under ``results/metrics/`` (see
:mod:`medslip.tables.dvc_metrics`), each file atomically, from the exact input files named on the
command line."""

from __future__ import annotations

import argparse

NAME = "dvc-metrics"
HELP = "write a DVC metrics file (headline, data, benchmarks) or the ROC points of one dataset"
OUTPUT_EITHER = ("out",)
"""``--out``: a directory for ``headline`` (a file per source and task), else a file."""

_KINDS = {
    "headline": "one JSON file per data source and task, {variant: value}, of "
    "results/tables/ablation.csv (--out: a folder)",
    "data": "images, quarantined, split and subset sizes of each results/data/* (JSON)",
    "benchmarks": "jobs, median and total seconds and peak memory per rule (JSON)",
    "roc": "zero-shot ROC points (variant, seed, fpr, tpr) of every run on one dataset (CSV)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    sub = {
        kind: kinds.add_parser(kind, help=text, description=text) for kind, text in _KINDS.items()
    }
    for p in sub.values():
        p.add_argument("--out", required=True, help="output file")
    sub["headline"].add_argument("--ablation", required=True, help="results/tables/ablation.csv")
    sub["data"].add_argument(
        "--data-dirs", nargs="+", required=True, metavar="DIR", help="results/data/{dataset}"
    )
    sub["benchmarks"].add_argument(
        "--benchmarks",
        nargs="*",
        default=[],
        metavar="RULE=TSV",
        help="Snakemake benchmark files, each with the rule of its job",
    )
    sub["roc"].add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="DIR",
        help="zero-shot evaluation dirs results/eval/zeroshot/{dataset}/{variant}/seed{seed}",
    )


def run(args: argparse.Namespace) -> int:
    import logging

    import pandas as pd

    from medslip.errors import MedslipError
    from medslip.tables import dvc_metrics as metrics

    log = logging.getLogger("medslip")
    if args.kind == "roc":
        points = metrics.roc_points(args.runs)
        metrics.write_csv(points, args.out)
        log.info("roc: %d points of %d runs -> %s", len(points), len(args.runs), args.out)
        return 0
    if args.kind == "headline":
        try:
            table = pd.read_csv(args.ablation)
        except (OSError, ValueError) as exc:
            raise MedslipError(f"{args.ablation}: not a readable CSV table ({exc})") from None
        try:
            value = metrics.headline(table)
        except MedslipError as exc:
            raise MedslipError(f"{args.ablation}: {exc}") from None
        count = metrics.write_headline(value, args.out)
        log.info("headline: %d files -> %s", count, args.out)
        return 0
    if args.kind == "data":
        value = metrics.data_counts(args.data_dirs)
    else:
        jobs: dict[str, list[str]] = {}
        for item in args.benchmarks:
            rule, sep, path = item.partition("=")
            if not sep or not rule or not path:
                raise MedslipError(f"--benchmarks: {item!r} is not RULE=TSV")
            jobs.setdefault(rule, []).append(path)
        value = metrics.benchmark_figures(jobs)
    metrics.write_json(value, args.out)
    log.info("%s: %d entries -> %s", args.kind, len(value), args.out)
    return 0
