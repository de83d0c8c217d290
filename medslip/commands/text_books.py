"""``medslip text-books``: encode the prompts once (and, for ``global_clip``, the reports)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

NAME = "text-books"
HELP = "encode the 75 pathology and 51 anatomy prompts with the frozen text encoder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config YAML or inline JSON (section text)")
    parser.add_argument("--out", help="books to write (safetensors, plus a .json sidecar)")
    parser.add_argument("--reports-manifest", help="MIMIC manifest Parquet whose reports to embed")
    parser.add_argument("--root", help="dataset root the manifest's report paths are relative to")
    parser.add_argument(
        "--reports-out", help="report embeddings to write (safetensors, plus a .json sidecar)"
    )
    parser.add_argument(
        "--device", default="cpu", help="torch device for the report embeddings (e.g. cuda)"
    )
    parser.add_argument(
        "--official",
        action="store_true",
        help="the books imported checkpoints read: text.encoder and text.descriptions with the "
        "official pooling and prompt lengths ([CLS], 128, 64 at evaluation)",
    )


def _reports(args: argparse.Namespace, settings, device: torch.device) -> None:
    import logging
    from pathlib import Path

    from medslip.data.manifest import read_manifest
    from medslip.model.text_books import embed_reports, load_encoder, save_report_embeddings

    tokenizer, model, name, weights = load_encoder(settings)
    model.to(device)
    manifest = read_manifest(args.reports_manifest)
    study_ids, embeddings = embed_reports(manifest, Path(args.root), settings, tokenizer, model)
    meta = {
        "encoder": name,
        "weights_sha256": weights,
        "pooling": settings.pooling,
        "max_length": settings.max_length,
        "manifest": str(args.reports_manifest),
    }
    save_report_embeddings(args.reports_out, study_ids, embeddings, meta)
    logging.getLogger("medslip").info(
        "%s: %d reports x %d -> %s", name, *embeddings.shape, args.reports_out
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from medslip.config import config_from_arg
    from medslip.devices import torch_device
    from medslip.errors import MedslipError
    from medslip.model.text_books import build_books, save_books
    from medslip.settings import TextSettings

    reports = (args.reports_manifest, args.root, args.reports_out)
    if any(reports) and not all(reports):
        raise MedslipError("--reports-manifest, --root and --reports-out go together")
    if not args.out and not all(reports):
        raise MedslipError("nothing to do: give --out, or --reports-manifest/--root/--reports-out")
    device = torch_device(args.device)
    if args.official and any(reports):
        raise MedslipError("--official builds prompt books only (no report embeddings)")
    config = config_from_arg(args.config)
    settings = (TextSettings.official if args.official else TextSettings.from_config)(config)
    if args.out:
        books = build_books(settings)
        save_books(books, args.out)
        logging.getLogger("medslip").info(
            "%s (%s, dim %d): books %s -> %s",
            books.meta["encoder"],
            settings.pooling,
            books.dim,
            books.meta["books_sha256"],
            args.out,
        )
    if all(reports):
        _reports(args, settings, device)
    return 0
