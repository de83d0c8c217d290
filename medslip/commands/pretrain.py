"""``medslip pretrain``: pretrain one model variant with one seed (resumes from its last
checkpoint); run it under ``torchrun --nproc_per_node N`` for DDP."""

from __future__ import annotations

import argparse

NAME = "pretrain"
HELP = "pretrain a MeDSLIP variant or baseline into results/models/{variant}/seed{seed}/"
OUTPUT_DIRS = ("out",)
"""Output options that name a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.variants import VARIANT_NAMES

    parser.add_argument("--config", required=True, help="config YAML file or inline JSON object")
    parser.add_argument("--variant", required=True, choices=VARIANT_NAMES)
    parser.add_argument("--seed", required=True, type=int, help="run seed")
    parser.add_argument("--data", required=True, help="MIMIC data stage dir (results/data/…)")
    parser.add_argument("--reports", required=True, help="report stage dir (label matrices)")
    parser.add_argument("--join", required=True, help="output dir of medslip pretrain-data")
    parser.add_argument("--books", required=True, help="text books (.safetensors)")
    parser.add_argument("--report-embeddings", help="report text embeddings (global_clip)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--threads", type=int, help="CPU threads of torch (default: torch's)")


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from medslip.config import config_from_arg
    from medslip.errors import MedslipError
    from medslip.flags import at_least
    from medslip.pretrain.loop import RunInputs, pretrain

    at_least("threads", args.threads, 1)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from medslip.variants import variant

    if variant(args.variant).needs_report_embeddings and not args.report_embeddings:
        raise MedslipError(f"--variant {args.variant} needs --report-embeddings")
    data = Path(args.data)
    inputs = RunInputs(
        shards=data / "shards",
        join_dir=Path(args.join),
        reports_dir=Path(args.reports),
        splits=data / "splits.csv",
        books=Path(args.books),
        report_embeddings=Path(args.report_embeddings) if args.report_embeddings else None,
    )
    meta = pretrain(config_from_arg(args.config), args.variant, args.seed, inputs, Path(args.out))
    logging.getLogger("medslip").info(
        "%s seed %d: %s", args.variant, args.seed, meta["final_epoch"]
    )
    return 0
