"""``ablation``: the ablation table as a dot plot, one panel per headline metric column of
``ablation.csv`` (``{col}``, ``{col}_lo``, ``{col}_hi``, ``{col}_n_seeds``), the variants on the
y axis, 95 % interval whiskers; an empty cell (not applicable) is written ``n/a``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from medslip.datasets import DATASETS
from medslip.errors import MedslipError
from medslip.figures.inputs import numeric, read_table
from medslip.figures.style import (
    count_range,
    fmt,
    footnote,
    message_figure,
    save,
    styled,
    title,
    variant_colours,
    variant_order,
    whiskers,
)
from medslip.layout import headline_columns

TASK_NAMES = {"zeroshot": "zero-shot", "grounding": "grounding", "finetune": "fine-tuning"}
METRIC_NAMES = {
    "auc": "AUC",
    "f1": "F1",
    "accuracy": "accuracy",
    "pointing": "pointing game",
    "dice": "Dice",
    "iou": "IoU",
    "recall": "recall",
    "precision": "precision",
    "pixel_auroc": "pixel AUROC",
}
_COLUMN = re.compile(
    r"^(?P<task>[a-z]+)_(?P<metric>.+?)_(?P<dataset>"
    + "|".join(sorted(DATASETS, key=len, reverse=True))
    + r")(?:_(?P<pct>[\d.]+)pct)?$"
)
CHANCE = {"auc": 0.5, "pixel_auroc": 0.5}


def describe(column: str) -> tuple[str, str | None]:
    """(panel title, metric key) of a headline column: ``finetune_dice_siim_acr_100pct`` ->
    (``fine-tuning Dice\\nsiim_acr, 100 % data``, ``dice``); unknown patterns keep the name."""
    match = _COLUMN.match(column)
    if not match:
        return column, None
    metric = match["metric"]
    text = f"{TASK_NAMES.get(match['task'], match['task'])} {METRIC_NAMES.get(metric, metric)}"
    text += f"\n{match['dataset']}"
    if match["pct"]:
        text += f", {match['pct']} % data"
    return text, metric


def draw_ablation(table: str | Path, out: str | Path):
    """Draw the ablation dot plot of ``table`` into ``out`` (PNG) and its PDF twin."""
    frame = read_table(table, ["variant"], ["source", "split"])
    columns = headline_columns(list(frame.columns))
    heading = "Ablation: headline metrics per variant"
    if frame.empty:
        return message_figure(heading, "no ablation results in the table", out, [str(table)])
    if not columns:
        raise MedslipError(
            f"{table}: no metric column (one with _lo and _hi siblings) among "
            f"{list(frame.columns)[:6]}"
        )
    frame = numeric(frame, [f"{c}{s}" for c in columns for s in ("", "_lo", "_hi")], table)
    for column in ("variant", "source", "split"):
        frame[column] = frame[column].fillna("").astype(str)
    order = {v: i for i, v in enumerate(variant_order(frame["variant"]))}
    frame = frame.sort_values(
        ["variant", "source", "split"], key=lambda s: s.map(order) if s.name == "variant" else s
    ).reset_index(drop=True)
    several = frame[["source", "split"]].drop_duplicates().shape[0] > 1
    labels = [
        f"{r.variant} ({r.source}, {r.split})" if several else r.variant for r in frame.itertuples()
    ]
    colours = variant_colours(order)
    y = np.arange(len(frame))[::-1]
    ncols = min(4, len(columns))
    nrows = -(-len(columns) // ncols)
    with styled() as plt:
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(3.4 * ncols + 1.4, 0.32 * len(frame) * nrows + 1.4 * nrows + 0.4),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
        for ax, column in zip(axes.flat, columns, strict=False):
            text, metric = describe(column)
            values = frame[column].to_numpy()
            lo, hi = frame[f"{column}_lo"].to_numpy(), frame[f"{column}_hi"].to_numpy()
            finite = np.isfinite(values)
            err = whiskers(values, lo, hi)
            for i in np.flatnonzero(finite):
                ax.errorbar(
                    values[i],
                    y[i],
                    xerr=err[:, i : i + 1],
                    fmt="o",
                    ms=5,
                    color=colours[frame["variant"][i]],
                    elinewidth=1.4,
                    capsize=2.5,
                )
            span = np.concatenate([values[finite], lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
            left, right = (span.min(), span.max()) if len(span) else (0.0, 1.0)
            pad = max((right - left) * 0.25, 0.02)
            ax.set_xlim(left - pad, right + pad)
            for i in np.flatnonzero(~finite):
                ax.text(
                    0.5,
                    y[i],
                    "n/a",
                    transform=ax.get_yaxis_transform(),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="0.5",
                )
            for i in np.flatnonzero(finite):
                edge = hi[i] if np.isfinite(hi[i]) else values[i]
                ax.annotate(
                    fmt(values[i]),
                    (edge, y[i]),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                )
            if metric in CHANCE and left - pad < CHANCE[metric] < right + pad:
                ax.axvline(CHANCE[metric], color="0.6", lw=0.8, ls=":")
            ax.set_title(text, fontsize=9)
            ax.set_xlabel(METRIC_NAMES.get(metric or "", "value"))
            ax.set_ylim(-0.7, len(frame) - 0.3)
        for ax in axes.flat[len(columns) :]:
            ax.set_axis_off()
        for ax in axes[:, 0]:
            ax.set_yticks(y, labels)
        title(fig, heading)
        seed_columns = [f"{c}_n_seeds" for c in columns if f"{c}_n_seeds" in frame]
        seed_text = count_range(
            pd.to_numeric(frame[seed_columns].stack(), errors="coerce") if seed_columns else []
        )
        footnote(
            fig,
            [
                "Dots: the table's value (mean over pretraining seeds, test split); whiskers: its "
                f"95 % interval (none where undefined); n seeds per cell: {seed_text} "
                "(ablation.csv *_n_seeds). n/a: the task does not apply to the variant (e.g. "
                "no zero-shot head for random_init, no attention maps for global_clip).",
                "Zero-shot AUC: threshold-free; grounding: P = map > τ with τ chosen on "
                "validation positives (zero_shot_grounding.csv lists τ); fine-tuning: test "
                "split after training on the given share of the training split. Dotted: chance.",
                "Sources: "
                + ", ".join(sorted(set(frame["source"]) - {""}) or ["?"])
                + " (never pooled).",
            ],
        )
        return save(fig, out)
