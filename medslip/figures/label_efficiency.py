"""``label_efficiency``: fine-tuning test score against the share of the training split used
(1 / 10 / 100 %, log scale), one line per variant with its interval band, one panel per
(task, dataset, data source, split), from ``finetune_classification.csv`` (rows ``class ==
"macro"``, AUC) and ``finetune_segmentation.csv`` (Dice)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medslip.figures.inputs import numeric, read_table
from medslip.figures.style import (
    count_range,
    footnote,
    message_figure,
    save,
    styled,
    title,
    variant_colours,
    variant_order,
)

KEYS = ["source", "split", "dataset", "variant", "pct"]
TASKS = {
    "classification": ("auc", "test AUC (macro over classes)"),
    "segmentation": ("dice", "test Dice (every test image)"),
}
"""Task -> (metric column, y-axis label)."""
SOURCE_NAMES = {"synthcxr": "SynthCXR", "real": "real data"}


def read_finetune_tables(cls_csv: str | Path, seg_csv: str | Path) -> pd.DataFrame:
    """One long frame: task, source, split, dataset, variant, pct, value, lo, hi, n_seeds."""
    parts = []
    for task, path in (("classification", cls_csv), ("segmentation", seg_csv)):
        metric, _ = TASKS[task]
        required = [*KEYS, metric] + (["class"] if task == "classification" else [])
        frame = read_table(path, required, [f"{metric}_lo", f"{metric}_hi", "n_seeds"])
        if task == "classification":
            frame = frame[frame["class"].astype(str) == "macro"]
        frame = numeric(frame, ["pct", metric, f"{metric}_lo", f"{metric}_hi", "n_seeds"], path)
        part = frame[KEYS + ["n_seeds"]].copy()
        part["task"] = task
        part["value"] = frame[metric]
        part["lo"] = frame[f"{metric}_lo"]
        part["hi"] = frame[f"{metric}_hi"]
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    for column in ("source", "split", "dataset", "variant"):
        long[column] = long[column].astype(str)
    return long[np.isfinite(long["pct"])]


def _panel_title(task: str, dataset: str, source: str, split: str) -> str:
    return f"{dataset} — {task}\n{SOURCE_NAMES.get(source.lower(), source)}, {split} split"


def draw_label_efficiency(cls_csv: str | Path, seg_csv: str | Path, out: str | Path):
    """Draw the label-efficiency figure into ``out`` (PNG) and its PDF twin."""
    frame = read_finetune_tables(cls_csv, seg_csv)
    heading = "Label efficiency of fine-tuning"
    if frame.empty:
        return message_figure(
            heading, "no fine-tuning results in the tables", out, [f"{cls_csv}, {seg_csv}"]
        )
    panels = list(frame.groupby(["task", "dataset", "source", "split"], sort=False).groups.items())
    panels.sort(key=lambda item: (list(TASKS).index(item[0][0]), item[0][1:]))
    variants = variant_order(frame["variant"])
    colours = variant_colours(variants)
    pcts = sorted(frame["pct"].unique())
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    with styled() as plt:
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(4.2 * ncols + 1.6, 3.4 * nrows),
            layout="constrained",
            squeeze=False,
        )
        handles = {}
        for ax, ((task, dataset, source, split), index) in zip(axes.flat, panels, strict=False):
            panel = frame.loc[index]
            for variant in variants:
                rows = panel[panel["variant"] == variant].sort_values("pct")
                if rows.empty:
                    continue
                x = rows["pct"].to_numpy()
                (line,) = ax.plot(
                    x, rows["value"], marker="o", ms=4, lw=1.6, color=colours[variant]
                )
                handles[variant] = line
                lo, hi = rows["lo"].to_numpy(), rows["hi"].to_numpy()
                band = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(rows["value"].to_numpy())
                if band.any():
                    ax.fill_between(x, lo, hi, where=band, color=colours[variant], alpha=0.18, lw=0)
            ax.set_xscale("log")
            ax.set_xticks(pcts, [f"{p:g} %" for p in pcts])
            ax.minorticks_off()
            ax.set_xlim(min(pcts) / 1.5, max(pcts) * 1.5)
            ax.set_xlabel("training data used (% of the training split, log scale)")
            ax.set_ylabel(TASKS[task][1])
            ax.set_title(_panel_title(task, dataset, source, split), fontsize=9)
            if task == "classification":
                ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
        for ax in axes.flat[len(panels) :]:
            ax.set_axis_off()
        fig.legend(
            [handles[v] for v in variants if v in handles],
            [v for v in variants if v in handles],
            loc="outside right upper",
            title="variant",
        )
        title(fig, heading)
        seed_text = count_range(frame["n_seeds"])
        footnote(
            fig,
            [
                "Each pretrained trunk fine-tuned on the published 1 / 10 / 100 % subsets of the "
                "training split, evaluated on the test split; points: mean over "
                f"{seed_text} (pretraining × fine-tuning) seed(s); bands: the tables' 95 % "
                "interval (none drawn where it is not defined).",
                "Classification: macro AUC over the classes (threshold-free; dotted line: "
                "chance). Segmentation: Dice of the sigmoid > 0.5 mask on every test image "
                "(an empty truth scores 1 when the prediction is empty too, else 0).",
                "Data source and split are in each panel's title; sources are never pooled.",
            ],
        )
        return save(fig, out)
