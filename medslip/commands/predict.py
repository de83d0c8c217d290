"""``medslip predict``: a pretrained or imported run's finding probabilities (75 entities, with
the ChestX-ray14 and CheXpert class views) and grounding overlays for a user's images."""

from __future__ import annotations

import argparse

NAME = "predict"
HELP = "finding probabilities and grounding overlays of a run's model on your images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", help="PNG, JPEG or DICOM files, or folders of them")
    parser.add_argument("--run-dir", required=True, help="results/models/{variant}/seed{seed}")
    parser.add_argument(
        "--out", default="predictions.csv", help="table to write (.csv, or .parquet)"
    )
    parser.add_argument(
        "--overlays",
        help="folder of the overlay PNGs (default: OUT's name + _overlays; 'none': no overlays)",
    )
    parser.add_argument("--top", type=int, default=3, help="ChestX-ray14 findings per overlay")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--books", help="text books (default: the run's, beside its folder)")
    parser.add_argument(
        "--thresholds",
        help="a zero-shot metrics.json whose validation thresholds give the calls (default: "
        "the run's own evaluation, when there)",
    )
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass")
    parser.add_argument("--workers", type=int, default=0, help="processes decoding images")


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from medslip.predict import Predictor, write_table

    out = Path(args.out)
    overlays = args.overlays or str(out.with_name(f"{out.stem}_overlays"))
    predictor = Predictor.load(args.run_dir, args.books, args.device, args.thresholds)
    table = predictor.predict(
        args.images,
        batch_size=args.batch_size,
        overlays=None if overlays == "none" else overlays,
        top=args.top,
        workers=args.workers,
    )
    write_table(table, out)
    images = table["image"].nunique()
    calls = int(table["call"].notna().sum() // max(images, 1))
    logging.getLogger("medslip").info(
        "%d images -> %s (%d thresholded calls per image)", images, out, calls
    )
    return 0
