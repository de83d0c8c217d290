"""``medslip finetune cls|seg``: fine-tune the trunk of one pretrained model on one dataset at one
training fraction with one seed, into
``results/eval/finetune_{cls,seg}/{dataset}/{variant}/seed{seed}/frac{pct}/ft{ft_seed}/``
(predictions Parquet + metrics JSON)."""

from __future__ import annotations

import argparse

NAME = "finetune"
HELP = "fine-tuning classification or segmentation from one pretrained model on one dataset"
OUTPUT_DIRS = ("out",)
"""Output options that name a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.layout import FINETUNE_TASKS

    parser.add_argument("task", choices=sorted(FINETUNE_TASKS))
    parser.add_argument("--config", required=True, help="config YAML file or inline JSON object")
    parser.add_argument("--run-dir", required=True, help="results/models/{variant}/seed{seed}")
    parser.add_argument("--data", required=True, help="data stage dir results/data/{dataset}")
    parser.add_argument("--dataset", required=True, help="dataset name")
    parser.add_argument(
        "--fraction", required=True, type=float, help="training subset (a subset_*pct column)"
    )
    parser.add_argument("--ft-seed", required=True, type=int, help="fine-tuning seed")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--out", required=True, help="output directory")


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from medslip.config import config_from_arg
    from medslip.devices import torch_device
    from medslip.finetune.cls import run_finetune_cls
    from medslip.finetune.seg import run_finetune_seg

    device = torch_device(args.device)
    runner = run_finetune_cls if args.task == "cls" else run_finetune_seg
    metrics = runner(
        config=config_from_arg(args.config),
        run_dir=Path(args.run_dir),
        data_dir=Path(args.data),
        dataset=args.dataset,
        fraction=args.fraction,
        ft_seed=args.ft_seed,
        out_dir=Path(args.out),
        device=device,
    )
    logger = logging.getLogger("medslip")
    for note in metrics.get("notes", []):
        logger.warning("%s", note)
    logger.info(
        "finetune %s %s %s seed %s frac %s ft %s: chosen epoch %s of %s (val %s %.4f)",
        args.task,
        args.dataset,
        metrics["variant"],
        metrics["seed"],
        metrics["pct"],
        metrics["ft_seed"],
        metrics["chosen_epoch"],
        metrics["epochs_run"],
        metrics["selection"],
        metrics["chosen_val_score"],
    )
    return 0
