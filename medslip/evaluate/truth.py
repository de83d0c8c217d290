"""Grounding ground truth at the shard resolution, as bool masks per (image, class).

* ``official``: the dataset's published localisation: boxes of ``shards/index.parquet`` (output
  pixels; a pixel is inside when it touches the box) and the shard masks (SIIM). In a
  single-class dataset every box and mask is that class's (RSNA "Lung Opacity" boxes are the
  Pneumonia class); otherwise a box belongs to the class it is labelled with.
* ``exact`` (SynthCXR only): the union of the drawn finding masks of the class's entity, from
  ``results/synthcxr/ground_truth/{dataset}/findings.parquet``, mapped from the written image
  size into the shards with the data stage's own resize (``data.aspect``).

Only positive pairs are kept: label 1 and a non-empty mask.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from medslip.data.decode import resize_mask
from medslip.data.shards import GATHERED, ShardReader
from medslip.evaluate.inputs import EvalSet
from medslip.rle import decode_siim

Masks = dict[tuple[int, int], np.ndarray]
"""(row of the EvalSet frame, class index) -> bool (S, S) mask."""
SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm")


def shard_geometry(data: EvalSet) -> tuple[int, str]:
    """(size, aspect) of the dataset's shards (their ``summary.json``)."""
    summary = json.loads((data.shards / GATHERED["summary"]).read_text())
    return int(summary["size"]), str(summary["aspect"])


def box_mask(boxes: list, shape: tuple[int, int]) -> np.ndarray:
    """Union of ``[x, y, w, h]`` boxes (output pixels) as bool (H, W); a pixel is inside when
    it touches the box."""
    height, width = shape
    mask = np.zeros(shape, dtype=bool)
    for x, y, w, h in boxes:
        x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
        x1 = min(width, max(x0 + 1, math.ceil(x + w)))
        y1 = min(height, max(y0 + 1, math.ceil(y + h)))
        mask[y0:y1, x0:x1] = True
    return mask


def _positive(data: EvalSet, masks: Masks) -> Masks:
    return {key: m for key, m in masks.items() if data.labels[key] == 1 and m.any()}


def official_truth(data: EvalSet) -> Masks:
    """Boxes and shard masks of the positive (image, class) pairs (see module docstring)."""
    size, _ = shard_geometry(data)
    index = pd.read_parquet(
        data.shards / GATHERED["index"], columns=["image_id", "boxes", "has_mask"]
    )
    index = index.set_index("image_id").loc[data.frame["image_id"]]
    single = len(data.classes) == 1
    reader = ShardReader(data.shards) if single and index["has_mask"].any() else None
    masks: Masks = {}
    for row, (boxes, has_mask) in enumerate(zip(index["boxes"], index["has_mask"], strict=True)):
        boxes = json.loads(boxes)
        for k, name in enumerate(data.classes):
            mask = box_mask([b[1:] for b in boxes if single or b[0] == name], (size, size))
            if reader is not None and has_mask:
                mask |= reader.mask(data.frame["image_id"].iloc[row]) > 0
            masks[(row, k)] = mask
    return _positive(data, masks)


def exact_truth(data: EvalSet, truth_dir: Path) -> Masks:
    """Exact SynthCXR finding masks of the positive pairs (see module docstring)."""
    size, aspect = shard_geometry(data)
    findings = pd.read_parquet(
        truth_dir / "findings.parquet", columns=["image_id", "entity", "mask_rle"]
    )
    written = pd.read_parquet(truth_dir / "images.parquet", columns=["image_id", "size"])
    source = dict(zip(written["image_id"], written["size"], strict=True))
    rows = {image_id: i for i, image_id in enumerate(data.frame["image_id"])}
    classes_of = {e: [k for k, x in enumerate(data.entities) if x == e] for e in data.entities}
    union: dict[tuple[int, int], np.ndarray] = {}
    for image_id, entity, rles in findings.itertuples(index=False):
        row = rows.get(eval_image_id(image_id, rows))
        if row is None or entity not in classes_of:
            continue
        mask = decode_siim(list(rles), source[image_id], source[image_id])
        for k in classes_of[entity]:
            union[(row, k)] = union.get((row, k), False) | mask
    masks = {key: resize_mask(m, size, aspect).astype(bool) for key, m in union.items()}
    return _positive(data, masks)


def eval_image_id(truth_id: str, known: dict[str, int] | set[str]) -> str:
    """The manifest's id of a ground-truth image id (NIH's keeps the ``.png`` suffix)."""
    if truth_id in known:
        return truth_id
    for suffix in SUFFIXES:
        if truth_id.endswith(suffix):
            return truth_id.removesuffix(suffix)
    return truth_id
