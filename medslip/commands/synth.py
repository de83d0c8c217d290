"""``medslip synth``: generate the SynthCXR datasets in their official formats."""

from __future__ import annotations

import argparse

NAME = "synth"
HELP = "generate SynthCXR (MIMIC-CXR-JPG, NIH ChestX-ray14, RSNA, SIIM-ACR formats + ground truth)"
OUTPUT_DIRS = ("out",)
"""Output options that name a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The registry (standard library only), not the generator: every `medslip` command builds
    # this parser, and the generator imports pandas and scipy.
    from medslip.datasets import SYNTHCXR_DATASETS

    parser.add_argument(
        "--config",
        required=True,
        help="workflow config: a YAML file or an inline JSON object (its synthcxr section is used)",
    )
    parser.add_argument("--out", required=True, help="output root (one tree per dataset)")
    parser.add_argument(
        "--dataset",
        action="append",
        choices=SYNTHCXR_DATASETS,
        help="generate only this dataset (repeatable; default: all)",
    )


def run(args: argparse.Namespace) -> int:
    from medslip.config import config_from_arg
    from medslip.synth import generate

    for name, root in generate(config_from_arg(args.config), args.out, args.dataset).items():
        print(f"{name}: {root}")
    return 0
