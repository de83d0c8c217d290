"""``medslip parse-reports``: radiology reports → triplets, 51×75 label matrices, class labels.

Parse one chunk of a report source (``--chunk I --n-chunks N`` take the I-th of N contiguous
slices of the sorted reports), or gather chunk directories into one (``--gather DIR ...``: their
files concatenated in order); a gathered run is identical to a one-chunk run. Library:
:func:`medslip.reports.pipeline.parse_reports`; output files: :mod:`medslip.reports.outputs`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

NAME = "parse-reports"
HELP = "parse radiology reports into triplets, label matrices and class labels"
OUTPUT_DIRS = ("out_dir",)
"""Output options that name a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        choices=("mimic", "iu_csv", "iu_xml", "text_csv", "radgraph"),
        help="input format (not with --gather)",
    )
    parser.add_argument(
        "--input",
        type=Path,
        help="mimic: the MIMIC-CXR-JPG manifest; IU CSV, XML dir or .tgz, text CSV, RadGraph JSON",
    )
    parser.add_argument(
        "--root", type=Path, help="mimic: reports root the manifest's report paths are under"
    )
    parser.add_argument("--out-dir", type=Path, required=True, help="output directory")
    parser.add_argument("--chunk", type=int, default=0, help="chunk index (0-based)")
    parser.add_argument("--n-chunks", type=int, default=1, help="number of chunks")
    parser.add_argument("--id-column", default="report_id", help="text_csv: id column")
    parser.add_argument("--text-column", default="text", help="text_csv: text column")
    parser.add_argument("--gather", type=Path, nargs="+", help="chunk directories to merge")


def run(args: argparse.Namespace) -> int:
    from medslip.errors import MedslipError
    from medslip.flags import at_least
    from medslip.reports.outputs import gather_outputs
    from medslip.reports.pipeline import parse_reports

    at_least("n_chunks", args.n_chunks, 1)
    if not 0 <= args.chunk < args.n_chunks:
        raise MedslipError(f"--chunk {args.chunk}: not in 0..{args.n_chunks - 1} (--n-chunks)")
    if args.gather:
        counts = gather_outputs(args.gather, args.out_dir)
    elif args.format is None or args.input is None:
        raise MedslipError("parse-reports: --format and --input are required without --gather")
    else:
        counts = parse_reports(
            args.format,
            args.input,
            args.out_dir,
            root=args.root,
            chunk=args.chunk,
            n_chunks=args.n_chunks,
            id_column=args.id_column,
            text_column=args.text_column,
        )
    logging.getLogger("medslip.parse_reports").info("parse-reports: %s → %s", counts, args.out_dir)
    return 0
