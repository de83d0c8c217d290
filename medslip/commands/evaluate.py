"""``medslip evaluate zeroshot|grounding|probe|controls``: evaluate one pretrained model on one
dataset into ``results/eval/{task}/{dataset}/{variant}/seed{seed}/`` (predictions Parquet +
metrics JSON); ``probe`` is the disentanglement probe against the SynthCXR ground truth
(``--truth``); ``controls`` scores the model-free grounding controls of one dataset
(:mod:`medslip.evaluate.controls`, no model) under ``--out`` (the evaluation root)."""

from __future__ import annotations

import argparse

NAME = "evaluate"
HELP = (
    "zero-shot classification, grounding or the disentanglement probe of one pretrained model "
    "on one dataset"
)
OUTPUT_DIRS = ("out",)
"""Output options that name a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.layout import EVAL_TASKS

    parser.add_argument("task", choices=(*EVAL_TASKS, "controls"))
    parser.add_argument("--config", required=True, help="config YAML file or inline JSON object")
    parser.add_argument(
        "--run-dir", help="results/models/{variant}/seed{seed} (every task but controls)"
    )
    parser.add_argument("--books", help="text books (.safetensors; every task but controls)")
    parser.add_argument("--data", required=True, help="data stage dir results/data/{dataset}")
    parser.add_argument("--dataset", required=True, help="dataset name (entity map key)")
    parser.add_argument(
        "--exact-truth", help="grounding: SynthCXR ground truth dir (exact finding masks)"
    )
    parser.add_argument(
        "--truth", help="probe (required): SynthCXR ground truth dir (finding kinds, landmarks)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument(
        "--out", required=True, help="output directory (controls: the evaluation root)"
    )


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from medslip.config import config_from_arg
    from medslip.devices import torch_device
    from medslip.errors import MedslipError
    from medslip.evaluate.grounding import run_grounding
    from medslip.evaluate.probe import run_probe
    from medslip.evaluate.zeroshot import run_zeroshot

    if args.task == "controls":
        from medslip.evaluate.controls import run_grounding_controls

        exact = Path(args.exact_truth) if args.exact_truth else None
        config = config_from_arg(args.config)
        results = run_grounding_controls(
            config, Path(args.data), args.dataset, Path(args.out), exact
        )
        for control, metrics in results.items():
            macro = metrics["truths"].get("official", {}).get("macro", {})
            logging.getLogger("medslip").info(
                "control %s on %s: pixel AUROC %.3f",
                control,
                args.dataset,
                macro.get("pixel_auroc", float("nan")),
            )
        return 0
    for flag in ("run_dir", "books"):
        if getattr(args, flag) is None:
            raise MedslipError(f"evaluate {args.task}: --{flag.replace('_', '-')} is required")
    device = torch_device(args.device)
    common = {
        "config": config_from_arg(args.config),
        "run_dir": Path(args.run_dir),
        "books": Path(args.books),
        "data_dir": Path(args.data),
        "dataset": args.dataset,
        "out_dir": Path(args.out),
        "device": device,
    }
    if args.task == "zeroshot":
        metrics = run_zeroshot(**common)
    elif args.task == "probe":
        if not args.truth:
            raise MedslipError(
                "evaluate probe: --truth (the SynthCXR ground truth dir) is required"
            )
        metrics = run_probe(**common, truth_dir=Path(args.truth))
    else:
        exact = Path(args.exact_truth) if args.exact_truth else None
        metrics = run_grounding(**common, exact_dir=exact)
    for note in metrics.get("notes", []):
        logging.getLogger("medslip").warning("%s", note)
    logging.getLogger("medslip").info(
        "%s %s %s seed %s: %s",
        args.task,
        args.dataset,
        metrics["variant"],
        metrics["seed"],
        metrics["status"],
    )
    if "verdict" in metrics:
        logging.getLogger("medslip").info("%s", metrics["verdict"])
    return 0
