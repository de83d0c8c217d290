"""Grounding controls: maps that need no model (:data:`CONTROL_MAPS`), scored by the same
code as every model's maps, so a reader can tell a map that grounds from one that does not: the
brightness and mean-map controls are floors a model must beat, the oracle the ceiling of its
token grid.

Each control is written like a model run of the grounding task (``variant`` ``control_<name>``,
seed 0), so the tables list it beside the models; τ is chosen on validation positives as for a
model.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from medslip.data.shards import ShardReader
from medslip.evaluate.grounding import (
    attention_entropy,
    grounding_protocol,
    pair_metrics,
    pooled,
    score_truth,
    upsample,
)
from medslip.evaluate.inputs import EvalSet, load_eval_set
from medslip.evaluate.report import write_outputs
from medslip.evaluate.truth import Masks, exact_truth, official_truth, shard_geometry
from medslip.layout import GROUNDING_CONTROLS, control_dir
from medslip.settings import STRIDE, EvalSettings

log = logging.getLogger(__name__)
CONTROL_MAPS = {
    "brightness": "the image itself (shard pixels over their maximum): a map that only follows "
    "bright pixels",
    "mean_map": "per class, the mean truth mask of the training split's positives: an "
    "image-independent prior of where the class sits",
    "oracle": "the truth pooled to the model's token grid (area mean over each token's cell), "
    "upsampled by the evaluation's own code: the best a map on that grid can do",
}
"""What each control of :data:`~medslip.layout.GROUNDING_CONTROLS` maps."""
CHUNK = 64
"""Pairs scored at a time."""


def mean_maps(train: EvalSet, truths: Masks, size: int) -> dict[int, np.ndarray]:
    """Per class index, the mean of the training positives' truth masks (S, S), scaled to a
    maximum of 1; classes without a training positive are left out."""
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for (_, k), mask in truths.items():
        sums[k] = sums.get(k, np.zeros((size, size))) + mask
        counts[k] = counts.get(k, 0) + 1
    return {k: (s / counts[k]) / max((s / counts[k]).max(), 1e-12) for k, s in sums.items()}


def control_maps(
    control: str,
    data: EvalSet,
    pairs: list[tuple[int, int]],
    truths: Masks,
    prior: dict[int, np.ndarray],
    grid: int,
    mode: str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Maps (N, S, S) in [0, 1] of ``control`` for the (row, class) ``pairs``, and the same maps
    on the token grid (N, T), whose entropy is reported like a model's attention."""
    size, _ = shard_geometry(data)
    if control == "oracle":
        tokens = pooled(torch.from_numpy(np.stack([truths[p] for p in pairs])), grid, mode)
        maps = upsample(tokens, size, mode)
    elif control == "brightness":
        reader = ShardReader(data.shards)
        ids = data.frame["image_id"].to_numpy()
        maps = torch.from_numpy(np.stack([reader[ids[r]] for r, _ in pairs]).astype(np.float32))
        tokens = pooled(maps, grid, mode)
    else:
        maps = torch.from_numpy(np.stack([prior[k] for _, k in pairs]).astype(np.float32))
        tokens = pooled(maps, grid, mode)
    peak = maps.flatten(1).amax(1).clamp(min=1e-12)
    return maps / peak[:, None, None], tokens


def control_values(
    control: str,
    data: EvalSet,
    truths: Masks,
    prior: dict[int, np.ndarray],
    grid: int,
    settings: EvalSettings,
) -> dict[str, np.ndarray]:
    """:func:`~medslip.evaluate.grounding.pair_metrics` of every positive pair with a map (sorted
    by (row, class)), with ``attention_entropy`` on the token grid, ``row`` and ``class``."""
    flags = settings.grounding
    steps = torch.arange(flags["tau_steps"] + 1, dtype=torch.float32) / flags["tau_steps"]
    pairs = [p for p in sorted(truths) if control != "mean_map" or p[1] in prior]
    parts = []
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        maps, tokens = control_maps(control, data, chunk, truths, prior, grid, flags["upsample"])
        truth = torch.from_numpy(np.stack([truths[p] for p in chunk]))
        values = pair_metrics(maps, truth, steps, flags["fixed_taus"])
        values["attention_entropy"] = attention_entropy(tokens).numpy()
        values["row"] = np.array([r for r, _ in chunk])
        values["class"] = np.array([k for _, k in chunk])
        parts.append(values)
    if not parts:
        return {}
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def run_grounding_controls(
    config: dict[str, Any],
    data_dir: Path,
    dataset: str,
    out_root: Path,
    exact_dir: Path | None = None,
) -> dict[str, dict[str, Any]]:
    """Score every control of :data:`~medslip.layout.GROUNDING_CONTROLS` on ``dataset`` against
    the official truth (and the exact SynthCXR masks under ``exact_dir``); writes each into
    :func:`~medslip.layout.control_dir` under ``out_root`` (the evaluation root); returns the
    metrics by control."""
    settings = EvalSettings.from_config(config, (dataset,), grounding=True)
    settings = replace(settings, grounding=settings.grounding | {"use_ws_p": False})
    image_size = int(config["presets"][config["preset"]]["model"]["image_size"])
    grid = image_size // STRIDE
    data = load_eval_set(data_dir, dataset, settings)
    train = load_eval_set(data_dir, dataset, settings, parts=("train",))
    size, _ = shard_geometry(data)
    truths = {"official": official_truth(data)}
    train_truths = {"official": official_truth(train)}
    if exact_dir is not None:
        truths["exact"] = exact_truth(data, exact_dir)
        train_truths["exact"] = exact_truth(train, exact_dir)
    out = {}
    for control in GROUNDING_CONTROLS:
        results, frames, notes = {}, [], []
        for kind, masks in truths.items():
            prior = mean_maps(train, train_truths[kind], size)
            values = control_values(control, data, masks, prior, grid, settings)
            if not values:
                notes.append(f"{kind}: no positive val/test pair with a map")
                continue
            results[kind], frame, kind_notes = score_truth(data, kind, values, settings)
            frames.append(frame)
            notes += kind_notes
            missing = sorted(set(data.classes) - {data.classes[k] for k in prior})
            if control == "mean_map" and missing:
                notes.append(f"{kind}: no training positive (no mean map) for {missing}")
        what = CONTROL_MAPS[control] + f" ({grid}×{grid} token grid)"
        metrics = {
            "task": "grounding",
            "dataset": dataset,
            "variant": f"control_{control}",
            "seed": 0,
            "status": "ok",
            "protocol": grounding_protocol(settings, what, grid * grid) | {"control": control},
            "truths": results,
            "notes": notes,
        }
        predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        write_outputs(Path(control_dir(dataset, control, str(out_root))), predictions, metrics)
        out[control] = metrics
    return out
