"""``medslip table NAME``: one of the paper's tables (CSV + Markdown twin) from the metrics
files of the evaluation stage (``results/eval/…/metrics.json``), or a summary of the data or
report stage (``data_summary``, ``report_labels``, ``label_statistics``)."""

from __future__ import annotations

import argparse

NAME = "table"
HELP = "build one results table (CSV + Markdown) from evaluation metrics files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.layout import TABLES

    parser.add_argument("name", choices=TABLES)
    parser.add_argument(
        "--sources",
        required=True,
        help='data source of each dataset as JSON, e.g. {"nih_cxr14": "SynthCXR"} (or "real")',
    )
    parser.add_argument("--csv", required=True, help="output CSV")
    parser.add_argument("--md", required=True, help="output Markdown twin")
    parser.add_argument(
        "--metrics", nargs="*", default=[], help="metrics.json files of the evaluation stage"
    )
    parser.add_argument(
        "--data-dirs",
        nargs="*",
        default=[],
        help="data_summary, label_statistics: results/data/*",
    )
    parser.add_argument(
        "--reports-dir", help="report_labels, label_statistics: results/reports/mimic_cxr"
    )
    parser.add_argument(
        "--entity-maps",
        default="{}",
        help="label_statistics: config evaluate.entity_maps as JSON (dataset -> class -> entity)",
    )
    parser.add_argument(
        "--model-size", type=int, help="label_statistics: model input side in pixels"
    )
    parser.add_argument(
        "--truth-dirs",
        nargs="*",
        default=[],
        help="label_statistics: SynthCXR ground truth, results/synthcxr/ground_truth/*",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    from pathlib import Path

    from medslip.errors import MedslipError
    from medslip.tables.collect import read_metrics
    from medslip.tables.output import write_table
    from medslip.tables.paper import BUILDERS
    from medslip.tables.stages import data_summary, label_statistics, report_labels

    try:
        sources = json.loads(args.sources)
        entity_maps = json.loads(args.entity_maps)
    except ValueError as exc:
        raise MedslipError(f"--sources / --entity-maps: not a JSON object ({exc})") from None
    if args.name == "data_summary":
        table = data_summary([Path(d) for d in args.data_dirs], sources)
    elif args.name == "report_labels":
        if not args.reports_dir:
            raise MedslipError("report_labels needs --reports-dir")
        table = report_labels(Path(args.reports_dir))
    elif args.name == "label_statistics":
        if not args.reports_dir or not args.model_size:
            raise MedslipError("label_statistics needs --reports-dir and --model-size")
        table = label_statistics(
            [Path(d) for d in args.data_dirs],
            Path(args.reports_dir),
            entity_maps,
            sources,
            args.model_size,
            [Path(d) for d in args.truth_dirs],
        )
    else:
        runs = read_metrics(args.metrics)
        try:
            table = BUILDERS[args.name](runs, sources)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise MedslipError(_incomplete(args.name, runs, sources, exc)) from None
    write_table(table, Path(args.csv), Path(args.md))
    logging.getLogger("medslip").info(
        "%s: %d rows from %d metrics files -> %s",
        args.name,
        len(table.frame),
        len(args.metrics),
        args.csv,
    )
    return 0


def _incomplete(name: str, runs: list[dict], sources: dict, error: Exception) -> str:
    """One line naming the metrics file table ``name`` cannot be built from (each is tried
    alone), and what is wrong with it."""
    from medslip.tables.paper import BUILDERS

    for run in runs:
        try:
            BUILDERS[name]([run], sources)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            what = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else repr(exc)
            return f"{run['_path']}: not a complete {run['task']} metrics file ({what})"
    return f"table {name}: the metrics files do not fit together ({error!r})"
