"""What every evaluation reads: the published split, labels mapped to entities, the model, and
batches of evaluation-transformed images.

Labels come from the manifest's ``labels`` JSON (1 positive, 0 negative; uncertain −1 and
unmentioned null are left out of that class's metrics), splits from ``splits.csv`` (the published
split; only ``val`` and ``test`` images are evaluated), images from the shards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medslip.data.dataset import ShardDataset, eval_transform
from medslip.data.manifest import read_manifest
from medslip.data.shards import GATHERED
from medslip.data.splits import read_split_table
from medslip.errors import MedslipError
from medslip.pretrain.checkpoint import load_pretrained
from medslip.progress import progress
from medslip.settings import EvalSettings
from medslip.vocab import ENTITY_INDEX

log = logging.getLogger(__name__)
EVAL_SPLITS = ("val", "test")


@dataclass(frozen=True)
class EvalSet:
    """The val + test images of a dataset that are in its shards, in image-id order.

    ``labels`` float (N, C) in {1, 0, NaN} for ``classes`` (mapped to ``entities``);
    ``frame``: image_id, patient_id (the image id where the source has none), split.
    """

    frame: pd.DataFrame
    classes: list[str]
    entities: list[str]
    labels: np.ndarray
    shards: Path
    missing: int


def entity_map(settings: EvalSettings, dataset: str, label_names: set[str]) -> dict[str, str]:
    """Class -> entity of ``dataset`` (config ``evaluate.entity_maps``), checked against the
    75 entities and the dataset's label names (errors list what does not map)."""
    if dataset not in settings.entity_maps:
        raise MedslipError(
            f"{dataset}: no entity map; set evaluate.entity_maps.{dataset} (class: entity)"
        )
    mapping = settings.entity_maps[dataset]
    unknown = sorted(e for e in mapping.values() if e not in ENTITY_INDEX)
    if unknown:
        raise MedslipError(f"evaluate.entity_maps.{dataset}: not MeDSLIP entities: {unknown}")
    absent = sorted(set(mapping) - label_names)
    if absent:
        raise MedslipError(
            f"evaluate.entity_maps.{dataset}: classes {absent} are not labels of the dataset "
            f"(its labels: {sorted(label_names)})"
        )
    return dict(mapping)


def load_eval_set(
    data_dir: Path, dataset: str, settings: EvalSettings, parts: tuple[str, ...] = EVAL_SPLITS
) -> EvalSet:
    """The :class:`EvalSet` of the data-stage directory ``results/data/{dataset}``: its
    split ``parts`` (val and test; the grounding controls also read train)."""
    manifest = read_manifest(data_dir / "manifest.parquet", ["image_id", "labels"])
    splits = read_split_table(data_dir / "splits.csv", ("test",))
    frame = splits[splits["split"].isin(parts)].merge(manifest, on="image_id", how="left")
    if frame["labels"].isna().any():
        raise MedslipError(f"{data_dir}: splits.csv lists images the manifest does not have")
    frame["decoded"] = [json.loads(text) for text in frame["labels"]]
    names = set().union(*(d.keys() for d in frame["decoded"]))
    mapping = entity_map(settings, dataset, names)
    shards = data_dir / "shards"
    index = pd.read_parquet(shards / GATHERED["index"], columns=["image_id"])
    present = frame["image_id"].isin(set(index["image_id"]))
    if not present.all():
        log.warning("%s: %d val/test images are not in the shards", dataset, (~present).sum())
    frame = frame[present].sort_values("image_id").reset_index(drop=True)
    frame["patient_id"] = frame["patient_id"].where(frame["patient_id"] != "", frame["image_id"])
    labels = np.array(
        [[_label(d.get(c)) for c in mapping] for d in frame["decoded"]], dtype=float
    ).reshape(len(frame), len(mapping))
    return EvalSet(
        frame=frame[["image_id", "patient_id", "split"]],
        classes=list(mapping),
        entities=list(mapping.values()),
        labels=labels,
        shards=shards,
        missing=int((~present).sum()),
    )


def _label(value: float | None) -> float:
    return value if value in (0.0, 1.0) else float("nan")


def load_model(run_dir: Path, books: Path, device: torch.device) -> torch.nn.Module:
    """The eval-mode model of a finished run on ``device``; a missing or corrupt checkpoint is
    an error naming the run directory."""
    try:
        model = load_pretrained(run_dir, books)
    except MedslipError:
        raise
    except Exception as exc:  # safetensors/OS errors mean a bad checkpoint
        raise MedslipError(f"{run_dir}: cannot load the model ({exc})") from None
    return model.to(device)


def image_batches(
    data: EvalSet,
    keys: list[str],
    size: int,
    batch_size: int,
    workers: int,
    device: torch.device,
    what: str,
) -> Iterator[tuple[list[str], torch.Tensor]]:
    """(image ids, float (B, 3, size, size)) batches of ``keys`` in order, eval-transformed on
    ``device``, with progress lines in the log."""
    loader = torch.utils.data.DataLoader(
        ShardDataset(data.shards, keys), batch_size=batch_size, num_workers=workers
    )
    for batch in progress(loader, what, unit="batch", logger=log):
        images = batch["image"].to(device, non_blocking=True)
        yield [keys[i] for i in batch["index"].tolist()], eval_transform(images, size)
