"""``medslip contact-sheet``: SynthCXR images with findings outlined and their reports beside."""

from __future__ import annotations

import argparse

NAME = "contact-sheet"
HELP = "draw a contact sheet of SynthCXR MIMIC-format studies (image + outlined findings + report)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tree", required=True, help="SynthCXR MIMIC-CXR-JPG tree")
    parser.add_argument("--truth", required=True, help="its ground-truth folder")
    parser.add_argument("--n", type=int, default=12, help="number of studies shown")
    parser.add_argument("--out", required=True, help="output PNG")


def run(args: argparse.Namespace) -> int:
    from medslip.synth.contact_sheet import contact_sheet

    contact_sheet(args.tree, args.truth, args.out, n=args.n)
    return 0
