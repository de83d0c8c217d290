"""``medslip table NAME``: one of the paper's tables (CSV + Markdown twin) from the metrics
files of the evaluation stage (``results/eval/…/metrics.json``), or a summary of the data or
report stage (``data_summary``, ``report_labels``)."""

from __future__ import annotations

import argparse

NAME = "table"
HELP = "build one results table (CSV + Markdown) from evaluation metrics files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.results.files import TABLES

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
    parser.add_argument("--data-dirs", nargs="*", default=[], help="data_summary: results/data/*")
    parser.add_argument("--reports-dir", help="report_labels: results/reports/mimic_cxr")


def run(args: argparse.Namespace) -> int:
    import json
    import logging
    from pathlib import Path

    from medslip.errors import MedslipError
    from medslip.results.collect import read_metrics
    from medslip.results.output import write_table
    from medslip.results.stage_tables import data_summary, report_labels
    from medslip.results.tables import BUILDERS

    try:
        sources = json.loads(args.sources)
    except ValueError as exc:
        raise MedslipError(f"--sources: not a JSON object ({exc})") from None
    if args.name == "data_summary":
        table = data_summary([Path(d) for d in args.data_dirs], sources)
    elif args.name == "report_labels":
        if not args.reports_dir:
            raise MedslipError("report_labels needs --reports-dir")
        table = report_labels(Path(args.reports_dir))
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
    from medslip.results.tables import BUILDERS

    for run in runs:
        try:
            BUILDERS[name]([run], sources)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            what = f"no {exc.args[0]!r}" if isinstance(exc, KeyError) else repr(exc)
            return f"{run['_path']}: not a complete {run['task']} metrics file ({what})"
    return f"table {name}: the metrics files do not fit together ({error!r})"
