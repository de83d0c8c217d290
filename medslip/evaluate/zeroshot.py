"""Zero-shot classification (the official `Sample_zero-shot_Classification_CXR14/test.py`): the
score of class c for an image is the existence probability of its entity from the pathology stream
(``global_clip``: its image–prompt similarity score); ``random_init`` has no zero-shot head and is
reported as n/a.

Per class on the test split: AUC; F1 and accuracy at the max-F1 threshold chosen on the
validation split; the paper protocol (max-F1 threshold chosen on test) as ``oracle_*``; 95 %
patient-bootstrap intervals (the validation threshold is held fixed in every resample). Macro =
mean over the classes where the metric is defined.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from medslip.evaluate.inputs import (
    EvalSet,
    image_batches,
    load_eval_set,
    load_model,
)
from medslip.evaluate.report import not_applicable, write_outputs
from medslip.evaluate.scores import (
    bootstrap_counts,
    classification,
    classification_draws,
    interval,
    max_f1_threshold,
    patient_codes,
)
from medslip.pretrain.checkpoint import read_run_meta
from medslip.progress import progress
from medslip.settings import EvalSettings
from medslip.variants import variant
from medslip.vocab import ENTITY_INDEX

log = logging.getLogger(__name__)
METRICS = ("auc", "f1", "accuracy", "oracle_threshold", "oracle_f1", "oracle_accuracy")
PREDICTION_COLUMNS = ["image_id", "patient_id", "split", "class", "entity", "label", "score"]


@torch.no_grad()
def entity_scores(
    model: torch.nn.Module,
    data: EvalSet,
    image_size: int,
    settings: EvalSettings,
    device: torch.device,
) -> np.ndarray:
    """Existence probability of each class's entity for every image: float (N, C)."""
    columns = torch.tensor([ENTITY_INDEX[e] for e in data.entities], device=device)
    keys = data.frame["image_id"].tolist()
    chunks = [
        model.existence_probability(images)[:, columns].float().cpu()
        for _, images in image_batches(
            data, keys, image_size, settings.batch_size, settings.workers, device, "zero-shot"
        )
    ]
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, len(columns)))


def predictions_frame(data: EvalSet, scores: np.ndarray) -> pd.DataFrame:
    """Long table: one row per (image, class) with the label (1/0/NaN) and the score."""
    n, c = data.labels.shape
    frame = data.frame.loc[np.repeat(np.arange(n), c)].reset_index(drop=True)
    frame["class"] = np.tile(data.classes, n)
    frame["entity"] = np.tile(data.entities, n)
    frame["label"] = data.labels.reshape(-1)
    frame["score"] = scores.reshape(-1).astype(float)
    return frame[PREDICTION_COLUMNS]


def class_metrics(
    predictions: pd.DataFrame, classes: list[str], settings: EvalSettings
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Per-class and macro metrics with intervals, and notes on what is undefined."""
    test = predictions[predictions["split"] == "test"]
    images = test.drop_duplicates("image_id")
    patients = images["patient_id"].to_numpy()
    patient_of = dict(zip(images["image_id"], patient_codes(patients), strict=True))
    counts = bootstrap_counts(patients, settings.bootstrap, settings.seed)
    notes: list[str] = []
    per_class: dict[str, Any] = {}
    draws = np.full((len(classes), settings.bootstrap, len(METRICS)), np.nan)
    for k, name in enumerate(progress(classes, "zero-shot bootstrap", unit="class", logger=log)):
        rows = predictions[(predictions["class"] == name) & predictions["label"].notna()]
        val, tst = rows[rows["split"] == "val"], rows[rows["split"] == "test"]
        threshold, _ = max_f1_threshold(val["label"].to_numpy(), val["score"].to_numpy())
        labels, scores = tst["label"].to_numpy(), tst["score"].to_numpy()
        point = classification(labels, scores, threshold)
        code = np.array([patient_of[i] for i in tst["image_id"]], dtype=int)
        if len(code):
            draws[k] = classification_draws(labels, scores, threshold, counts[:, code])
        n_pos, n_val_pos = int((labels == 1).sum()), int((val["label"] == 1).sum())
        if n_val_pos == 0:
            notes.append(f"{name}: no positive in val; threshold, f1 and accuracy are NaN")
        if n_pos == 0 or n_pos == len(labels):
            notes.append(f"{name}: test has {n_pos} of {len(labels)} positive; AUC is NaN")
        per_class[name] = {
            "entity": rows["entity"].iloc[0] if len(rows) else None,
            "n_test": len(labels),
            "n_test_positive": n_pos,
            "n_val": len(val),
            "n_val_positive": n_val_pos,
            "threshold": threshold,
        } | _with_intervals(point, draws[k])
    macro_point = {m: _nanmean([per_class[c][m] for c in classes]) for m in METRICS}
    with warnings.catch_warnings():  # resamples where every class is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        macro = _with_intervals(macro_point, np.nanmean(draws, axis=0))
    return per_class, macro, notes


def _with_intervals(point: dict[str, float], draws: np.ndarray) -> dict[str, Any]:
    """{metric: value, metric_ci: [lo, hi]} from point values and draws (R, len(METRICS))."""
    out: dict[str, Any] = {}
    for j, metric in enumerate(METRICS):
        out[metric] = point[metric]
        out[f"{metric}_ci"] = list(interval(draws[:, j]))
    return out


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def run_zeroshot(
    config: dict[str, Any],
    run_dir: Path,
    books: Path,
    data_dir: Path,
    dataset: str,
    out_dir: Path,
    device: torch.device,
) -> dict[str, Any]:
    """Evaluate the model of ``run_dir`` on ``dataset``; writes predictions + metrics under
    ``out_dir`` and returns the metrics."""
    settings = EvalSettings.from_config(config, (dataset,))
    meta = read_run_meta(run_dir)
    data = load_eval_set(data_dir, dataset, settings)
    head = {
        "task": "zeroshot",
        "dataset": dataset,
        "variant": meta["variant"],
        "seed": meta["seed"],
    }
    entry = variant(meta["variant"])
    if not entry.does("zeroshot"):
        metrics = not_applicable(head, entry.not_applicable["zeroshot"])
        write_outputs(out_dir, pd.DataFrame(columns=PREDICTION_COLUMNS), metrics)
        return metrics
    model = load_model(run_dir, books, device)
    scores = entity_scores(model, data, meta["model"]["image_size"], settings, device)
    predictions = predictions_frame(data, scores)
    per_class, macro, notes = class_metrics(predictions, data.classes, settings)
    if data.missing:
        notes.append(f"{data.missing} val/test images are not in the shards (quarantined)")
    metrics = head | {
        "status": "ok",
        "protocol": {
            "score": "existence probability of the class entity"
            if not entry.scores_by_similarity
            else "(1 + cos(image, entity prompt)) / 2",
            "threshold": "max-F1 on the validation split (score >= threshold is positive)",
            "oracle": "max-F1 threshold chosen on test (the paper protocol)",
            "bootstrap": {
                "unit": "patient",
                "resamples": settings.bootstrap,
                "seed": settings.seed,
                "level": 0.95,
                "paired": "the same resamples for every model of a dataset",
            },
            "split": "published splits.csv (val for thresholds, test for metrics)",
        },
        "images": {s: int((data.frame["split"] == s).sum()) for s in ("val", "test")},
        "classes": per_class,
        "macro": macro,
        "notes": notes,
    }
    write_outputs(out_dir, predictions, metrics)
    return metrics
