"""``roc_{dataset}``: zero-shot ROC curves of every evaluated variant on one dataset, overlaid.

One curve per (variant, pretraining seed) from its per-image predictions: the test split's
(image, class) pairs with a label, pooled over the classes (micro ROC; for a single-class
dataset this is the class's ROC). The legend gives each run's macro AUC with its 95 %
patient-bootstrap interval from ``metrics.json``. Several seeds of a variant are thin curves of
the variant's colour; variants the task does not apply to (``"status": "n/a"``) are named in the
footnote, not plotted.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medslip.errors import MedslipError
from medslip.figures.inputs import read_json, require
from medslip.figures.style import (
    fmt_interval,
    footnote,
    save,
    styled,
    title,
    variant_colours,
    variant_order,
)
from medslip.layout import EVAL_FILES


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct score threshold, from (0, 0)
    to (1, 1); tied scores move both rates at once. Needs both classes."""
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order], scores[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # end of each tie group
    tp = np.cumsum(labels)[last]
    fp = (last + 1) - tp
    return np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]


def pooled_test_pairs(predictions: pd.DataFrame) -> pd.DataFrame:
    """Test-split rows with a finite 0/1 label and a finite score."""
    test = predictions[predictions["split"] == "test"]
    label = pd.to_numeric(test["label"], errors="coerce")
    score = pd.to_numeric(test["score"], errors="coerce")
    keep = np.isfinite(label) & np.isfinite(score)
    return pd.DataFrame({"label": label[keep], "score": score[keep]})


def _read_run(run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame | None]:
    metrics = read_json(run_dir / EVAL_FILES["metrics"])
    if metrics.get("status") != "ok":
        return metrics, None
    predictions = pd.read_parquet(
        run_dir / EVAL_FILES["predictions"], columns=["split", "label", "score"]
    )
    return metrics, predictions


def _scores_line(scores: dict[str, str]) -> str:
    """``Scores: <description> (variants); ...`` grouping the variants by their score."""
    by_text: dict[str, list[str]] = {}
    for variant, text in scores.items():
        by_text.setdefault(text or "see metrics.json", []).append(variant)
    parts = [f"{text} ({', '.join(vs)})" for text, vs in by_text.items()]
    return "Scores: " + "; ".join(parts) + "." if parts else ""


def draw_roc(run_dirs: Sequence[str | Path], out: str | Path) -> list[Path]:
    """Draw the ROC figure of the zero-shot evaluation directories ``run_dirs`` (all of one
    dataset) into ``out`` (PNG) and its PDF twin."""
    run_dirs = [Path(d) for d in run_dirs]
    if not run_dirs:
        raise MedslipError("roc: no evaluation directory given")
    require(d / name for d in run_dirs for name in EVAL_FILES.values())
    runs = [(d, *_read_run(d)) for d in run_dirs]
    datasets = sorted({str(m.get("dataset")) for _, m, _ in runs})
    if len(datasets) != 1:
        raise MedslipError(f"roc: the runs are of several datasets {datasets}; give one's")
    dataset = datasets[0]
    order = {v: i for i, v in enumerate(variant_order(m["variant"] for _, m, _ in runs))}
    runs.sort(key=lambda r: (order[r[1]["variant"]], int(r[1].get("seed", 0))))
    colours = variant_colours(order)
    seeds_of: dict[str, int] = {}
    for _, metrics, _ in runs:
        seeds_of[metrics["variant"]] = seeds_of.get(metrics["variant"], 0) + 1
    notes_na: list[str] = []
    undrawable: list[str] = []
    pairs = images = classes = None
    protocol: dict[str, Any] = {}
    scores: dict[str, str] = {}
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(6.4, 6.0), layout="constrained")
        ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":", label="chance (AUC 0.5)")
        for _, metrics, predictions in runs:
            variant, seed = metrics["variant"], metrics.get("seed")
            if predictions is None:
                reason = metrics.get("reason", metrics.get("status", "no result"))
                notes_na.append(f"{variant} seed {seed} ({reason})")
                continue
            protocol = protocol or metrics.get("protocol", {})
            scores[variant] = metrics.get("protocol", {}).get("score", "")
            pooled = pooled_test_pairs(predictions)
            pairs = len(pooled)
            images = metrics.get("images", {}).get("test")
            classes = len(metrics.get("classes", {}))
            several = seeds_of[variant] > 1
            name = f"{variant} seed {seed}" if several else variant
            macro = metrics.get("macro", {})
            label = f"{name}: {fmt_interval(macro.get('auc'), macro.get('auc_ci'))}"
            if pooled["label"].nunique() < 2:
                undrawable.append(f"{name} (the test pairs have only one class)")
                ax.plot([], [], color=colours[variant], label=label + " (no curve)")
                continue
            fpr, tpr = roc_points(pooled["label"].to_numpy(), pooled["score"].to_numpy())
            ax.plot(
                fpr,
                tpr,
                color=colours[variant],
                lw=0.9 if several else 1.8,
                alpha=0.85 if several else 1.0,
                label=label,
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.005)
        ax.set_aspect("equal")
        ax.set_xlabel("false positive rate (1 − specificity)")
        ax.set_ylabel("true positive rate (sensitivity)")
        ax.legend(
            loc="lower right",
            fontsize=7.5,
            title="macro AUC [95 % CI]",
            title_fontsize=8,
        )
        title(fig, f"Zero-shot classification ROC — {dataset}")
        boot = protocol.get("bootstrap", {})
        lines = [
            f"Test split of the published splits.csv: {images if images is not None else '?'} "
            f"images × {classes if classes is not None else '?'} classes; each curve pools every "
            f"labelled (image, class) pair ({pairs if pairs is not None else '?'} per run; "
            "uncertain and unmentioned labels left out), i.e. a micro-averaged ROC.",
            "Legend: macro AUC over the classes with its 95 % interval from "
            f"{boot.get('resamples', '?')} patient-level bootstrap resamples (metrics.json). "
            "ROC and AUC are threshold-free (τ does not apply); the F1/accuracy threshold is "
            "the max-F1 threshold on the validation split.",
            _scores_line(scores),
        ]
        if any(n > 1 for n in seeds_of.values()):
            lines.append("Thin curves: one per pretraining seed, in the variant's colour.")
        if notes_na:
            lines.append("Not plotted (n/a): " + "; ".join(notes_na) + ".")
        if undrawable:
            lines.append("No curve: " + "; ".join(undrawable) + ".")
        footnote(fig, lines)
        return save(fig, out)
