"""``medslip pretrain-data``: join the report label matrices with the MIMIC images by study."""

from __future__ import annotations

import argparse

NAME = "pretrain-data"
HELP = "join report label matrices with MIMIC images by study_id (+ a count table)"
OUTPUT_DIRS = ("out",)
"""Output options that name a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reports", required=True, help="report stage dir (label_matrix.npy…)")
    parser.add_argument("--data", required=True, help="MIMIC data stage dir (manifest, splits)")
    parser.add_argument("--out", required=True, help="output directory")


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from medslip.pretrain.join import write_join

    counts = write_join(Path(args.reports), Path(args.data), Path(args.out))
    logging.getLogger("medslip").info("pretraining join:\n%s", counts.to_string(index=False))
    return 0
