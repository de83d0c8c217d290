"""``medslip figure KIND``: draw one figure of the paper into ``--out`` (a PNG at 150 dpi) and
its PDF twin (same stem), atomically, from the exact input files named on the command line."""

from __future__ import annotations

import argparse

NAME = "figure"
HELP = "draw one figure (PNG + PDF twin) from evaluation outputs, result tables or training logs"

_KINDS = {
    "roc": "zero-shot ROC curves of every variant on one dataset (results/figures/roc_{dataset})",
    "grounding_overlays": "image, ground truth, pathology-stream and anatomy-weighted maps of "
    "a seeded sample of positive test images",
    "label_efficiency": "fine-tuning AUC / Dice against 1 / 10 / 100 %% of the training data",
    "pretraining_curves": "loss terms, validation loss and learning rate of every pretraining run",
    "ablation": "the ablation table as a dot plot with interval whiskers",
    "disentanglement": "the disentanglement probe: each stream on each target",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.layout import FIGURES

    kinds = parser.add_subparsers(dest="figure", metavar="KIND", required=True)
    sub = {
        kind: kinds.add_parser(kind, help=_KINDS[kind], description=_KINDS[kind] % {})
        for kind in FIGURES
    }
    for kind, p in sub.items():
        p.add_argument(
            "--out",
            required=True,
            help=f"output PNG (e.g. results/figures/{kind}.png); the PDF twin is written beside it",
        )
    sub["roc"].add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="DIR",
        help="zero-shot evaluation dirs results/eval/zeroshot/{dataset}/{variant}/seed{seed} "
        "(predictions.parquet + metrics.json), all of one dataset",
    )
    overlays = sub["grounding_overlays"]
    overlays.add_argument("--config", required=True, help="config YAML file or inline JSON object")
    overlays.add_argument("--run-dir", required=True, help="results/models/{variant}/seed{seed}")
    overlays.add_argument("--books", required=True, help="text books (.safetensors)")
    overlays.add_argument("--data", required=True, help="data stage dir results/data/{dataset}")
    overlays.add_argument("--dataset", required=True, help="grounding dataset name")
    overlays.add_argument(
        "--metrics",
        required=True,
        help="the grounding metrics.json of the same model and dataset (its τ_val is drawn)",
    )
    overlays.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    sub["label_efficiency"].add_argument(
        "--cls", required=True, help="results/tables/finetune_classification.csv"
    )
    sub["label_efficiency"].add_argument(
        "--seg", required=True, help="results/tables/finetune_segmentation.csv"
    )
    sub["pretraining_curves"].add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="DIR",
        help="run dirs results/models/{variant}/seed{seed} (model.json, metrics/*.csv)",
    )
    sub["ablation"].add_argument("--table", required=True, help="results/tables/ablation.csv")
    sub["disentanglement"].add_argument(
        "--table", required=True, help="results/tables/disentanglement.csv"
    )


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from medslip.errors import MedslipError

    if Path(args.out).suffix != ".png":
        raise MedslipError(f"{args.out}: --out must name the PNG (the PDF twin gets its stem)")
    if args.figure == "roc":
        from medslip.figures.roc import draw_roc

        written = draw_roc(args.runs, args.out)
    elif args.figure == "grounding_overlays":
        from medslip.config import config_from_arg
        from medslip.devices import torch_device
        from medslip.figures.overlays import draw_grounding_overlays

        device = torch_device(args.device)
        written = draw_grounding_overlays(
            config_from_arg(args.config),
            args.run_dir,
            args.books,
            args.data,
            args.dataset,
            args.metrics,
            args.out,
            device,
        )
    elif args.figure == "label_efficiency":
        from medslip.figures.label_efficiency import draw_label_efficiency

        written = draw_label_efficiency(args.cls, args.seg, args.out)
    elif args.figure == "pretraining_curves":
        from medslip.figures.pretraining import draw_pretraining_curves

        written = draw_pretraining_curves(args.runs, args.out)
    elif args.figure == "ablation":
        from medslip.figures.ablation import draw_ablation

        written = draw_ablation(args.table, args.out)
    else:
        from medslip.figures.disentanglement import draw_disentanglement

        written = draw_disentanglement(args.table, args.out)
    logging.getLogger("medslip").info("%s: wrote %s", args.figure, ", ".join(map(str, written)))
    return 0
