"""Zero-shot grounding (the official `Sample_Zero-Shot_Grounding_RSNA/test.py`, with the gaps of the
official code closed).

Map of class c = the pathology decoder's cross-attention (head-averaged) for the class entity,
mean over layers, for the whole batch at once (B, C, T). Options (config
``evaluate.grounding``): ``use_ws_p`` weights it by the anatomy decoder's maps,
h = mean_j (h ⊙ A_a[j]) over the 51 landmark queries (MeDSLIP only); normalisation per image
and class (default) or by the class's maximum over the whole batch (official); bilinear
upsampling between the token centres where the trunk puts them (default) or nearest (official:
×16 repetition when the shard size is 16× the token grid). Maps are compared with the ground
truth at the shard resolution.

Metrics on positive pairs (:mod:`medslip.evaluate.truth`): pointing game; Dice, IoU, recall,
precision of P = map > τ at the τ of a grid chosen on the validation positives (max mean Dice)
and at the fixed τ of the config (official 0 and 0.01); pixel AUROC; patient-bootstrap
intervals of every mean.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from medslip.evaluate.inputs import (
    EvalSet,
    image_batches,
    load_eval_set,
    load_model,
)
from medslip.evaluate.report import not_applicable, write_outputs
from medslip.evaluate.scores import (
    bootstrap_counts,
    interval,
    mask_overlap,
    overlap,
    patient_codes,
    pixel_auroc,
    pointing_game,
    threshold_curves,
    weighted_means,
)
from medslip.evaluate.truth import Masks, exact_truth, official_truth, shard_geometry
from medslip.model.streams import ModelOutput
from medslip.pretrain.checkpoint import read_run_meta
from medslip.progress import progress
from medslip.settings import STRIDE, EvalSettings
from medslip.variants import variant
from medslip.vocab import ENTITY_INDEX

log = logging.getLogger(__name__)
OVERLAP = ("dice", "iou", "recall", "precision")


def attention_maps(out: ModelOutput, entities: Tensor, use_ws_p: bool) -> Tensor:
    """Maps (B, C, T) of the ``entities`` (C,) rows: mean over layers of ``out.attn_p``
    (each (B, 75, T)); with ``use_ws_p``, times the mean over layers and the 51 landmark
    queries of ``out.attn_a`` (each (B, 51, T)), i.e. mean_j (h ⊙ A_a[j])."""
    maps = torch.stack(out.attn_p).mean(dim=0)[:, entities]
    if use_ws_p:
        maps = maps * torch.stack(out.attn_a).mean(dim=(0, 2)).unsqueeze(1)
    return maps


def attention_entropy(maps: Tensor) -> Tensor:
    """Entropy in nats of each map (N, T) read as a distribution over its T tokens (each map
    divided by its sum); a uniform map has log T, a map on one token 0."""
    p = maps.double() / maps.double().sum(-1, keepdim=True).clamp(min=1e-300)
    return -(p * p.clamp(min=1e-300).log()).sum(-1)


def normalise(maps: Tensor, batch_max: bool) -> Tensor:
    """(B, C, T) divided by each map's maximum, or (``batch_max``, official) by the class's
    maximum over the whole batch."""
    peak = maps.amax(dim=(0, 2) if batch_max else 2, keepdim=True)
    return maps / peak.clamp(min=torch.finfo(maps.dtype).tiny)


TOKEN_CENTRE = 0.5 / STRIDE
"""Where the trunk centres token i, in token units of the continuous image axis: at i + 1/32,
i.e. model-input pixel 16·i. Each stride-2 layer of the trunk (7×7 conv with padding 3, 3×3 max
pool and convolutions with padding 1, 1×1 downsampling) centres output j on input 2·j, so token
i sits on pixel 16·i, not on the middle (16·i + 8) of the 16-pixel cell it is often drawn as."""


def _token_positions(size: int, grid: int) -> Tensor:
    """Each of ``size`` pixel centres along one image axis, in token units (token i at i)."""
    return (torch.arange(size, dtype=torch.float64) + 0.5) * grid / size - TOKEN_CENTRE


def _bilinear_weights(size: int, grid: int) -> Tensor:
    """(size, grid) linear interpolation between the two nearest token centres (the edge
    token's value beyond the outermost centres)."""
    u = _token_positions(size, grid).clamp(0, grid - 1)
    left = u.floor().clamp(max=max(grid - 2, 0)).long()
    frac = u - left
    weights = torch.zeros(size, grid, dtype=torch.float64)
    weights[torch.arange(size), left] = 1 - frac
    if grid > 1:
        weights[torch.arange(size), left + 1] += frac
    return weights


def cell_weights(size: int, grid: int, mode: str) -> Tensor:
    """(grid, size) area-mean weights of each token's cell along one axis, the cells that
    ``upsample`` draws the tokens on: for ``bilinear``, the pixels nearer token i's centre
    (:data:`TOKEN_CENTRE`) than any other's; for ``nearest``, the official ×16 cells
    [i·size/grid, (i + 1)·size/grid)."""
    if mode == "bilinear":
        cell = _token_positions(size, grid).round().clamp(0, grid - 1).long()
    else:
        cell = torch.div(torch.arange(size) * grid, size, rounding_mode="floor")
    weights = torch.zeros(grid, size, dtype=torch.float64)
    weights[cell, torch.arange(size)] = 1.0
    return weights / weights.sum(1, keepdim=True).clamp(min=1)


def upsample(maps: Tensor, size: int, mode: str) -> Tensor:
    """Token maps (N, T) on a square grid -> (N, size, size).

    ``bilinear``: interpolated between the token centres where the trunk puts them
    (:data:`TOKEN_CENTRE`); ``nearest``: the official ×16 repetition (each token fills the cell
    [i·s, (i + 1)·s) with s = size / grid, half a token off the trunk's centres)."""
    grid = math.isqrt(maps.shape[-1])
    square = maps.reshape(-1, grid, grid)
    if mode != "bilinear":
        return F.interpolate(square[:, None], size=(size, size), mode=mode)[:, 0]
    weights = _bilinear_weights(size, grid).to(square.device, square.dtype)
    return weights @ square @ weights.T


def pooled(masks: Tensor, grid: int, mode: str) -> Tensor:
    """Maps or bool masks (N, S, S) -> their area mean over each token's cell as
    :func:`upsample` of ``mode`` draws it (N, T = grid²): the inverse of upsampling."""
    weights = cell_weights(masks.shape[-1], grid, mode).to(masks.device, torch.float32)
    return (weights @ masks.float() @ weights.T).flatten(1)


def grid_tokens(image_size: int) -> int:
    """Visual tokens of a model input of ``image_size`` pixels square (the trunk's stride)."""
    return (image_size // STRIDE) ** 2


def pair_metrics(
    maps: Tensor, truth: Tensor, grid: Tensor, fixed: list[float]
) -> dict[str, np.ndarray]:
    """Per-pair values of maps (N, S, S) vs bool truth (N, S, S): pointing, pixel_auroc,
    truth_pixels, the τ-grid curves ``pred_curve``/``inter_curve`` (N, K) and, per fixed τ,
    Dice/IoU/recall/precision and the predicted pixel fraction."""
    pred_curve, inter_curve = threshold_curves(maps, truth, grid)
    out = {
        "pointing": pointing_game(maps, truth).float().cpu().numpy(),
        "pixel_auroc": pixel_auroc(maps, truth),
        "truth_pixels": truth.flatten(1).sum(1).cpu().numpy(),
        "pred_curve": pred_curve.cpu().numpy(),
        "inter_curve": inter_curve.cpu().numpy(),
    }
    for tau in fixed:
        pred = maps > tau
        for name, value in mask_overlap(pred, truth).items():
            out[f"{name}_tau_{tau:g}"] = value.cpu().numpy()
        out[f"pred_fraction_tau_{tau:g}"] = pred.flatten(1).float().mean(1).cpu().numpy()
    return out


@torch.no_grad()
def grounding_values(
    model: torch.nn.Module,
    data: EvalSet,
    truths: dict[str, Masks],
    image_size: int,
    settings: EvalSettings,
    device: torch.device,
) -> dict[str, dict[str, np.ndarray]]:
    """Per truth kind, :func:`pair_metrics` of every positive pair (sorted by (row, class)),
    plus ``row`` and ``class`` (N,). Images without a positive pair are run only under
    batch-max normalisation (their maps change the batch maximum)."""
    flags = settings.grounding
    size, _ = shard_geometry(data)
    entities = torch.tensor([ENTITY_INDEX[e] for e in data.entities], device=device)
    grid = torch.arange(flags["tau_steps"] + 1, dtype=torch.float32) / flags["tau_steps"]
    by_row: dict[str, dict[int, list[tuple[int, int]]]] = {kind: {} for kind in truths}
    for kind, masks in truths.items():
        for row, k in sorted(masks):
            by_row[kind].setdefault(row, []).append((row, k))
    rows = sorted({r for pairs in by_row.values() for r in pairs})
    if flags["batch_max_normalisation"]:
        rows = list(range(len(data.frame)))
    keys = data.frame["image_id"].iloc[rows].tolist()
    row_of = dict(zip(keys, rows, strict=True))
    parts: dict[str, list[dict[str, np.ndarray]]] = {kind: [] for kind in truths}
    batches = image_batches(
        data, keys, image_size, settings.batch_size, settings.workers, device, "grounding"
    )
    for ids, images in batches:
        out = model(images, return_attention=True)
        raw = attention_maps(out, entities, flags["use_ws_p"])
        maps = normalise(raw, flags["batch_max_normalisation"])
        position = {row_of[i]: b for b, i in enumerate(ids)}
        for kind, pairs in by_row.items():
            chosen = [pair for r in position for pair in pairs.get(r, [])]
            if not chosen:
                continue
            b = torch.tensor([position[r] for r, _ in chosen], device=device)
            c = torch.tensor([k for _, k in chosen], device=device)
            up = upsample(maps[b, c], size, flags["upsample"])
            truth = torch.from_numpy(np.stack([truths[kind][key] for key in chosen])).to(device)
            values = pair_metrics(up, truth, grid, flags["fixed_taus"])
            values["attention_entropy"] = attention_entropy(raw[b, c]).cpu().numpy()
            values["row"] = np.array([r for r, _ in chosen])
            values["class"] = np.array([k for _, k in chosen])
            parts[kind].append(values)
    return {
        kind: {name: np.concatenate([p[name] for p in chunks]) for name in chunks[0]}
        for kind, chunks in parts.items()
        if chunks
    }


def choose_tau(values: dict[str, np.ndarray], val: np.ndarray, grid: np.ndarray) -> float:
    """τ of ``grid`` (K,) with the highest mean Dice over the validation pairs (bool mask
    ``val`` (N,)); the smallest such τ on ties; NaN without validation pairs."""
    if not val.any():
        return float("nan")
    curves = overlap(
        *(torch.from_numpy(values[k][val]) for k in ("inter_curve", "pred_curve")),
        torch.from_numpy(values["truth_pixels"][val])[:, None],
    )
    return float(grid[int(curves["dice"].mean(0).argmax())])


def pair_frame(
    data: EvalSet, kind: str, values: dict[str, np.ndarray], tau: float, grid: np.ndarray
) -> pd.DataFrame:
    """Per-pair predictions table of one truth kind: ids, split, class, every metric value."""
    frame = data.frame.iloc[values["row"]].reset_index(drop=True)
    frame["class"] = np.array(data.classes)[values["class"]]
    frame["entity"] = np.array(data.entities)[values["class"]]
    frame["truth"] = kind
    frame["truth_pixels"] = values["truth_pixels"]
    frame["pointing"] = values["pointing"]
    frame["pixel_auroc"] = values["pixel_auroc"]
    frame["attention_entropy"] = values["attention_entropy"]
    frame["tau_val"] = tau
    j = int(np.argmin(np.abs(grid - tau))) if np.isfinite(tau) else None
    at = overlap(
        *(torch.from_numpy(values[k][:, j or 0]) for k in ("inter_curve", "pred_curve")),
        torch.from_numpy(values["truth_pixels"]),
    )
    for name in OVERLAP:
        frame[f"{name}_tau_val"] = at[name].numpy() if j is not None else np.nan
    for name in (k for k in values if "_tau_" in k):
        frame[name] = values[name]
    return frame


def summarise(
    frame: pd.DataFrame, classes: list[str], settings: EvalSettings
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-class and macro means of every metric column over the test pairs, with patient
    bootstrap intervals (one set of resamples over the test patients, paired across classes)."""
    test = frame[frame["split"] == "test"]
    threshold_free = ("pointing", "pixel_auroc", "attention_entropy")
    metrics = [c for c in test.columns if c in threshold_free or "_tau_" in c]
    counts = bootstrap_counts(test["patient_id"].to_numpy(), settings.bootstrap, settings.seed)
    codes = patient_codes(test["patient_id"].to_numpy())
    per_class: dict[str, Any] = {}
    draws = np.full((len(classes), settings.bootstrap, len(metrics)), np.nan)
    with warnings.catch_warnings():  # means of empty or all-NaN selections
        warnings.simplefilter("ignore", RuntimeWarning)
        for k, name in enumerate(
            progress(classes, "grounding bootstrap", unit="class", logger=log)
        ):
            mine = (test["class"] == name).to_numpy()
            entry: dict[str, Any] = {"n_test": int(mine.sum())}
            for j, metric in enumerate(metrics):
                values = test[metric].to_numpy(dtype=float)[mine]
                if mine.any():
                    draws[k, :, j] = weighted_means(values, counts[:, codes[mine]])
                entry[metric] = float(np.nanmean(values)) if mine.any() else float("nan")
                entry[f"{metric}_ci"] = list(interval(draws[k, :, j]))
            per_class[name] = entry
        macro: dict[str, Any] = {}
        macro_draws = np.nanmean(draws, axis=0)
        for j, metric in enumerate(metrics):
            macro[metric] = float(np.nanmean([per_class[c][metric] for c in classes]))
            macro[f"{metric}_ci"] = list(interval(macro_draws[:, j]))
    return per_class, macro


def score_truth(
    data: EvalSet, kind: str, values: dict[str, np.ndarray], settings: EvalSettings
) -> tuple[dict[str, Any], pd.DataFrame, list[str]]:
    """One truth kind's result (τ chosen on the validation pairs, counts, per-class and macro
    summaries), its per-pair frame and its notes, from :func:`grounding_values`-like values."""
    steps = settings.grounding["tau_steps"]
    grid = np.arange(steps + 1) / steps
    val = data.frame["split"].to_numpy()[values["row"]] == "val"
    tau = choose_tau(values, val, grid)
    notes = []
    if not np.isfinite(tau):
        notes.append(
            f"{kind}: no validation positive with ground truth, so no τ is chosen "
            "(the *_tau_val metrics are NaN; see the fixed-τ columns and pixel AUROC)"
        )
    frame = pair_frame(data, kind, values, tau, grid)
    per_class, macro = summarise(frame, data.classes, settings)
    result = {
        "tau_val": tau,
        "n_val": int(val.sum()),
        "n_test": int((frame["split"] == "test").sum()),
        "classes": per_class,
        "macro": macro,
    }
    return result, frame, notes


def grounding_protocol(
    settings: EvalSettings, what: str, tokens: int, normalisation: str | None = None
) -> dict[str, Any]:
    """The ``protocol`` block of a grounding metrics file whose maps are ``what``, on a grid
    of ``tokens`` tokens (``normalisation`` None: per image and class)."""
    flags = settings.grounding
    return {
        "map": what,
        "use_ws_p": flags["use_ws_p"],
        "normalisation": normalisation or "per image and class",
        "upsample": flags["upsample"],
        "tau_val": f"max mean Dice over validation positives, grid k/{flags['tau_steps']}",
        "fixed_taus": flags["fixed_taus"],
        "prediction": "P = map > τ",
        "attention_entropy": "entropy (nats) of the map over its tokens before "
        "normalisation; a uniform map has uniform_entropy = log(tokens)",
        "uniform_entropy": math.log(tokens),
        "bootstrap": {"unit": "patient", "resamples": settings.bootstrap, "seed": settings.seed},
    }


def run_grounding(
    config: dict[str, Any],
    run_dir: Path,
    books: Path,
    data_dir: Path,
    dataset: str,
    out_dir: Path,
    device: torch.device,
    exact_dir: Path | None = None,
) -> dict[str, Any]:
    """Ground every class of ``dataset`` with the model of ``run_dir`` against the official
    truth (and the exact SynthCXR masks under ``exact_dir``); writes predictions + metrics."""
    settings = EvalSettings.from_config(config, (dataset,), grounding=True)
    flags = settings.grounding
    meta = read_run_meta(run_dir)
    entry = variant(meta["variant"])
    head = {"task": "grounding", "dataset": dataset, "variant": entry.name, "seed": meta["seed"]}
    if not entry.does("grounding"):
        metrics = not_applicable(head, entry.not_applicable["grounding"])
        write_outputs(out_dir, pd.DataFrame(columns=["image_id", "class", "truth"]), metrics)
        return metrics
    data = load_eval_set(data_dir, dataset, settings)
    truths = {"official": official_truth(data)}
    if exact_dir is not None:
        truths["exact"] = exact_truth(data, exact_dir)
    model = load_model(run_dir, books, device)
    notes: list[str] = []
    use_ws_p = flags["use_ws_p"] and entry.has_anatomy_stream
    if flags["use_ws_p"] and not use_ws_p:
        notes.append(f"use_ws_p ignored: {entry.name} has no anatomy stream")
    settings = replace(settings, grounding=flags | {"use_ws_p": use_ws_p})
    values = grounding_values(model, data, truths, meta["model"]["image_size"], settings, device)
    frames, results = [], {}
    for kind in truths:
        if kind not in values:
            notes.append(f"{kind}: no positive val/test image with ground truth")
            continue
        results[kind], frame, kind_notes = score_truth(data, kind, values[kind], settings)
        frames.append(frame)
        notes += kind_notes
    for tau in flags["fixed_taus"]:
        column = f"pred_fraction_tau_{tau:g}"
        share = float(np.mean([f[column].mean() for f in frames])) if frames else float("nan")
        if share > 0.95:
            notes.append(
                f"τ = {tau:g} is degenerate: P covers {share:.1%} of the image on average, so "
                "IoU ≈ the truth's area fraction and Dice ≈ 2a/(1 + a)"
            )
    normalisation = "batch max (official)" if flags["batch_max_normalisation"] else None
    metrics = head | {
        "status": "ok",
        "protocol": grounding_protocol(
            settings,
            "pathology-decoder cross-attention of the class entity, mean over layers",
            grid_tokens(meta["model"]["image_size"]),
            normalisation,
        ),
        "truths": results,
        "notes": notes,
    }
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    write_outputs(out_dir, predictions, metrics)
    return metrics
