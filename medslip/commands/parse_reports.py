"""``medslip parse-reports``: radiology reports → triplets, 51×75 label matrices, class labels.

Parse one chunk of a report source (``--chunk I --n-chunks N`` take the I-th of N contiguous
slices of the sorted reports), or gather chunk directories into one (``--gather DIR ...``: their
files concatenated in order, the ``--uncertain-as-positive`` setting taken from the chunks); a
gathered run is identical to a one-chunk run. Output files: see ``medslip.reports.matrix``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

NAME = "parse-reports"
HELP = "parse radiology reports into triplets, label matrices and class labels"

FORMATS = ("mimic", "iu_csv", "iu_xml", "text_csv", "radgraph")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, help="input format (not with --gather)")
    parser.add_argument(
        "--input", type=Path, help="reports tree, CSV, XML dir or .tgz, RadGraph JSON"
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="output directory")
    parser.add_argument("--chunk", type=int, default=0, help="chunk index (0-based)")
    parser.add_argument("--n-chunks", type=int, default=1, help="number of chunks")
    parser.add_argument("--id-column", default="report_id", help="text_csv: id column")
    parser.add_argument("--text-column", default="text", help="text_csv: text column")
    parser.add_argument(
        "--uncertain-as-positive",
        action="store_true",
        help="uncertain → 1 in the label matrix (not with --gather: the chunks carry it)",
    )
    parser.add_argument("--gather", type=Path, nargs="+", help="chunk directories to merge")


def _chunk(items: list, chunk: int, n_chunks: int) -> list:
    """The ``chunk``-th of ``n_chunks`` contiguous, near-equal slices of ``items``."""
    lo = len(items) * chunk // n_chunks
    hi = len(items) * (chunk + 1) // n_chunks
    return items[lo:hi]


def run(args: argparse.Namespace) -> int:
    from medslip.errors import MedslipError
    from medslip.reports.matrix import gather_outputs, write_outputs
    from medslip.reports.parse import default_parser
    from medslip.reports.radgraph import read_radgraph
    from medslip.reports.readers import (
        Skipped,
        mimic_report_paths,
        read_iu_csv,
        read_iu_xml,
        read_mimic_files,
        read_text_csv,
    )

    log = logging.getLogger("medslip.parse_reports")
    if args.gather:
        if args.uncertain_as_positive:
            raise MedslipError("parse-reports: --gather takes --uncertain-as-positive from chunks")
        counts = gather_outputs(args.gather, args.out_dir)
    else:
        if args.format is None or args.input is None:
            raise MedslipError("parse-reports: --format and --input are required without --gather")
        if not 0 <= args.chunk < args.n_chunks:
            raise MedslipError(f"parse-reports: --chunk {args.chunk} not in [0, {args.n_chunks})")
        if not args.input.exists():
            raise MedslipError(f"{args.input}: input does not exist")
        if args.format == "mimic":
            paths = mimic_report_paths(args.input)
            records = read_mimic_files(_chunk(paths, args.chunk, args.n_chunks))
        else:
            reader = {
                "iu_csv": lambda: read_iu_csv(args.input),
                "iu_xml": lambda: read_iu_xml(args.input),
                "text_csv": lambda: read_text_csv(args.input, args.id_column, args.text_column),
                "radgraph": lambda: read_radgraph(args.input),
            }[args.format]
            records = _chunk(list(reader()), args.chunk, args.n_chunks)
        parser = None if args.format == "radgraph" else default_parser()
        parsed, skipped = [], []
        for rec in records:
            if isinstance(rec, Skipped):
                log.warning("skipped %s (%s): %s", rec.report_id, rec.source, rec.reason)
                skipped.append(rec)
            elif parser is None:
                parsed.append(rec)  # RadGraph: already (report id, triplets)
            else:
                parsed.append((rec.report_id, parser.parse(rec.text)))
        counts = write_outputs(args.out_dir, parsed, skipped, args.uncertain_as_positive)
    log.info("parse-reports: %s → %s", counts, args.out_dir)
    return 0
