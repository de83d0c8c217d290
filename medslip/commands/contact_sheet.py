"""``medslip contact-sheet``: SynthCXR images with findings outlined and their reports beside."""

from __future__ import annotations

import argparse

NAME = "contact-sheet"
HELP = "draw a contact sheet of SynthCXR MIMIC-format studies (image + outlined findings + report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tree", required=True, help="SynthCXR MIMIC-CXR-JPG tree")
    parser.add_argument("--truth", required=True, help="its ground-truth folder")
    parser.add_argument(
        "--n", type=int, help="number of studies shown (default: synthcxr.contact_sheet_images)"
    )
    parser.add_argument("--out", required=True, help="output PNG")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medslip.config import defaults
    from medslip.errors import MedslipError
    from medslip.flags import at_least
    from medslip.synth.contact_sheet import contact_sheet

    for flag, folder in (("--tree", args.tree), ("--truth", args.truth)):
        if not Path(folder).is_dir():
            raise MedslipError(f"{flag} {folder}: not a directory")
    at_least("n", args.n, 1)
    n = defaults()["synthcxr"]["contact_sheet_images"] if args.n is None else args.n
    contact_sheet(args.tree, args.truth, args.out, n=n)
    return 0
