"""``medslip model-card``: the model card of one run (Hugging Face layout) from its model.json,
the metrics files of its evaluations and the data stage's split files."""

from __future__ import annotations

import argparse

NAME = "model-card"
HELP = "write the model card (MODEL_CARD.md) of one pretrained or imported run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, help="results/models/{variant}/seed{seed}")
    parser.add_argument(
        "--sources",
        required=True,
        help='data source of each dataset as JSON, e.g. {"nih_cxr14": "SynthCXR"} (or "real")',
    )
    parser.add_argument(
        "--metrics", nargs="*", default=[], help="metrics.json files of the run's evaluations"
    )
    parser.add_argument(
        "--data-dirs", nargs="*", default=[], help="results/data/* of the evaluated datasets"
    )
    parser.add_argument("--pretrain-data", help="results/data/mimic_cxr_jpg (trained runs)")
    parser.add_argument("--real-table", help="results/tables/real_lung_segmentation.csv")
    parser.add_argument("--out", required=True, help="MODEL_CARD.md to write")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from medslip.atomic import write_bytes_atomic
    from medslip.errors import MedslipError
    from medslip.tables.model_card import model_card

    try:
        sources = json.loads(args.sources)
    except ValueError as exc:
        raise MedslipError(f"--sources: not a JSON object ({exc})") from None
    text = model_card(
        Path(args.run_dir),
        [Path(p) for p in args.metrics],
        sources,
        [Path(d) for d in args.data_dirs],
        Path(args.pretrain_data) if args.pretrain_data else None,
        Path(args.real_table) if args.real_table else None,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, text.encode())
    return 0
