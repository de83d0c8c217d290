"""``medslip bench predict``: importing an official-size checkpoint, and ``medslip predict``
next to the evaluation's own loop, side by side in one run.

- ``import``: :func:`~medslip.pretrain.import_checkpoint.import_checkpoint` of a MeDSLIP
  checkpoint at the paper preset in the official layout with its AdamW state, lr scheduler,
  config and epoch (random weights, :func:`~medslip.model.official.official_checkpoint`);
  limit 30 s.
- ``eval_zeroshot``: the zero-shot evaluation's scoring loop
  (:func:`~medslip.evaluate.zeroshot.entity_scores`: shard loader, evaluation transform,
  existence probabilities) over the images preprocessed into an LMDB shard at the model's side;
- ``predict``: :meth:`~medslip.predict.Predictor.predict` of the same model on the same image
  files (decoding each, the table, the overlay PNG of each image's top three findings);
- ``predict_table``: the same without overlays.

The three are interleaved round by round on the imported model (paper preset, 224 px, fp32,
eval mode). Writes ``results/benchmarks/predict_speed.csv`` (device, case, images, repeats,
median_s, images_per_s, ratio = images/s over ``eval_zeroshot``'s, floor 0.8; for ``import``
the checkpoint's size and the 30 s limit) and prints it; exits 1 below a floor or above the
limit. Images: the real NIH ChestX-ray14 PNGs (1024 x 1024) of ``--real``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medslip.atomic import atomic_path
from medslip.benchmarks.eval import interleaved
from medslip.benchmarks.train import bench_device
from medslip.config import defaults
from medslip.data.preprocess import Settings, folder_manifest, preprocess_all
from medslip.data.shards import ShardReader
from medslip.errors import MedslipError
from medslip.evaluate.inputs import EvalSet
from medslip.evaluate.zeroshot import entity_scores
from medslip.model import create_model
from medslip.model.official import official_checkpoint
from medslip.model.text_books import TextBooks, books_sha256, save_books
from medslip.predict import Predictor
from medslip.pretrain.import_checkpoint import import_checkpoint
from medslip.settings import EvalSettings, ModelSettings
from medslip.variants import VARIANTS
from medslip.vocab import ENTITIES

FLOOR = 0.8
IMPORT_LIMIT_S = 30.0
FAMILY = "medslip"
VARIANT = next(v.name for v in VARIANTS.values() if v.imported and v.family == FAMILY)


def _books(path: Path, dim: int) -> Path:
    generator = torch.Generator().manual_seed(0)
    p, a = torch.randn(75, dim, generator=generator), torch.randn(51, dim, generator=generator)
    tensors = {"pathology": p, "anatomy": a, "pathology_eval": p, "anatomy_eval": a}
    meta = {"books_sha256": books_sha256(tensors), "dim": dim}
    save_books(TextBooks(**tensors, dim=dim, meta=meta), path)
    return path


def _import_seconds(work: Path, books: Path, repeats: int, text_dim: int) -> tuple[float, int]:
    """Median seconds of importing an official-size checkpoint, and its size in bytes."""
    model = dict(defaults()["presets"]["paper"]["model"])
    settings = ModelSettings(
        variant=VARIANT, **{**model, "trunk_layers": tuple(model["trunk_layers"])}
    )
    torch.manual_seed(0)
    random = create_model(settings, text_dim, torch.zeros(75, text_dim), torch.zeros(51, text_dim))
    path = work / "MeDSLIP_checkpoint.pth"
    torch.save(official_checkpoint(random, FAMILY, settings), path)
    times = []
    for repeat in range(repeats):
        tic = time.perf_counter()
        import_checkpoint(path, VARIANT, books, work / "models" / VARIANT / f"seed{repeat}")
        times.append(time.perf_counter() - tic)
    return statistics.median(times), path.stat().st_size


def _eval_set(shards: Path) -> EvalSet:
    """Every image of the shard as the test split (entity columns: the 75 entities)."""
    keys = sorted(ShardReader(shards).keys())
    frame = pd.DataFrame({"image_id": keys, "patient_id": keys, "split": "test"})
    labels = np.zeros((len(keys), len(ENTITIES)))
    return EvalSet(frame, list(ENTITIES), list(ENTITIES), labels, shards, 0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medslip bench predict", description=__doc__)
    parser.add_argument("--real", default="../shared/data/real", help="real public data root")
    parser.add_argument("--images", type=int, default=24, help="NIH PNGs predicted per round")
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass")
    parser.add_argument("--steps", type=int, default=3, help="timed rounds (median)")
    parser.add_argument("--repeats", type=int, default=3, help="timed imports (median)")
    parser.add_argument("--text-dim", type=int, default=768, help="768: Bio_ClinicalBERT")
    parser.add_argument("--out", default="results/benchmarks/predict_speed.csv")
    args = parser.parse_args(argv)
    folder = Path(args.real) / "nih_chestxray14" / "images"
    paths = sorted(folder.glob("*.png"))[: args.images]
    if not paths:
        raise MedslipError(f"--real {args.real}: no NIH PNG under {folder}")
    device, name = bench_device()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        books = _books(work / "models" / "books.safetensors", args.text_dim)
        seconds, size = _import_seconds(work, books, args.repeats, args.text_dim)
        rows.append(
            {"case": "import", "repeats": args.repeats, "median_s": seconds, "bytes": size}
            | {"limit_s": IMPORT_LIMIT_S}
        )
        predictor = Predictor.load(work / "models" / VARIANT / "seed0", books, str(device))
        side = predictor.image_size
        preprocess_all(
            folder_manifest(folder).head(len(paths)),
            folder,
            work / "shards",
            Settings(side, "stretch"),
            "lmdb",
            1,
            0.0,
        )
        data = _eval_set(work / "shards")
        settings = EvalSettings(0, 0, args.batch, 0, {}, {})

        def overlays() -> None:
            predictor.predict(paths, args.batch, overlays=work / "overlays", workers=0)

        cases = {
            "eval_zeroshot": lambda: entity_scores(predictor.model, data, side, settings, device),
            "predict": overlays,
            "predict_table": lambda: predictor.predict(paths, args.batch, workers=0),
        }
        with torch.no_grad():
            medians = interleaved(cases, args.steps, device)
    for case, median in medians.items():
        rows.append(
            {
                "case": case,
                "images": len(paths),
                "repeats": args.steps,
                "median_s": median,
                "images_per_s": len(paths) / median,
                "ratio": medians["eval_zeroshot"] / median,
                "floor": FLOOR,
            }
        )
    head = {"device": name, "preset": "paper", "batch": args.batch}
    frame = pd.DataFrame([head | row for row in rows])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp_out:
        frame.to_csv(tmp_out, index=False)
    print(frame.to_string(index=False))
    slow = seconds > IMPORT_LIMIT_S
    below = frame[(frame["case"] == "predict") & (frame["ratio"] < FLOOR)]
    return 1 if slow or len(below) else 0
