"""``pretraining_curves``: per pretrained variant, every training loss term against the
optimizer step, the validation loss terms against the epoch, and the learning rate, from the run
directories' ``metrics/steps.csv`` and ``metrics/epochs.csv`` (columns of
:class:`medslip.pretrain.loop._History`: ``epoch, step, lr, img_per_s, <term>...`` and ``epoch,
lr, train_<term>..., val_<term>...``). Runs that were never trained (``random_init``) have no
logs: they are named in the footnote."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medslip.errors import MedslipError
from medslip.figures.inputs import numeric, read_json, read_table, require
from medslip.figures.style import (
    footnote,
    message_figure,
    save,
    styled,
    title,
    variant_order,
)
from medslip.layout import RUN_FILES
from medslip.variants import variant as get_variant

NOT_TERMS = {"epoch", "step", "lr", "img_per_s"}
TERM_NAMES = {
    "total": "total L",
    "exist_p": "existence (pathology)",
    "exist_a": "existence (anatomy)",
    "protocl_p": "ProtoCL (pathology)",
    "protocl_a": "ProtoCL (anatomy)",
    "icl": "ICL",
    "position": "position (MedKLIP)",
    "clip": "CLIP (InfoNCE)",
}


def _smooth(values: np.ndarray) -> np.ndarray:
    """A centred running mean over ~1 % of the steps (none for short runs)."""
    window = len(values) // 100
    if window < 3:
        return values
    series = pd.Series(values).rolling(window, center=True, min_periods=1).mean()
    return series.to_numpy()


def read_run_logs(run_dir: str | Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """(model.json, steps, epochs) of a run directory; an untrained run (``epochs_trained``
    0) gives empty frames; a trained one without its logs, or with logs without rows or
    shorter than its ``epochs_trained``, is an error naming the file."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / RUN_FILES["meta"])
    paths = [run_dir / RUN_FILES[k] for k in ("steps", "epochs")]
    untrained = meta.get("epochs_trained") == 0 or not get_variant(meta["variant"]).trained
    if untrained and not all(p.is_file() for p in paths):
        return meta, pd.DataFrame(), pd.DataFrame()
    require(paths)
    steps = numeric(read_table(paths[0], ["epoch", "step", "lr"]), ["epoch", "step"], paths[0])
    epochs = numeric(read_table(paths[1], ["epoch"]), ["epoch"], paths[1])
    trained = meta.get("epochs_trained")
    for path, frame in zip(paths, (steps, epochs), strict=True):
        if frame.empty or frame[["epoch"]].isna().to_numpy().any():
            raise MedslipError(
                f"{path}: no rows (or rows without an epoch), but {run_dir} is a "
                f"trained run ({trained} epochs in its {RUN_FILES['meta']})"
            )
    if isinstance(trained, int) and epochs["epoch"].max() < trained:
        raise MedslipError(
            f"{paths[1]}: epochs up to {int(epochs['epoch'].max())}, but {trained} were trained "
            f"({run_dir / RUN_FILES['meta']})"
        )
    return meta, steps, epochs


def _term_colours(terms: list[str]) -> dict[str, Any]:
    import seaborn as sns

    palette = sns.color_palette("tab10", 10)
    known = [t for t in TERM_NAMES if t != "total"]
    others = sorted(t for t in terms if t not in TERM_NAMES)
    colours = {"total": "black"}
    for i, term in enumerate(known + others):
        colours[term] = palette[i % len(palette)]
    return colours


def draw_pretraining_curves(run_dirs: Sequence[str | Path], out: str | Path):
    """Draw the pretraining curves of the run directories into ``out`` (PNG) and its PDF twin."""
    if not run_dirs:
        raise MedslipError("pretraining_curves: no run directory given")
    require(Path(d) / RUN_FILES["meta"] for d in run_dirs)
    runs = [read_run_logs(d) for d in run_dirs]
    untrained = sorted(
        {f"{m['variant']} seed {m.get('seed')}" for m, steps, _ in runs if steps.empty}
    )
    trained = [r for r in runs if not r[1].empty]
    heading = "Pretraining curves"
    skipped = f"Not trained, no curves: {', '.join(untrained)}." if untrained else ""
    if not trained:
        return message_figure(heading, "no trained run to plot", out, [skipped])
    variants = variant_order(m["variant"] for m, _, _ in trained)
    terms = sorted({c for _, s, _ in trained for c in s.columns} - NOT_TERMS)
    colours = _term_colours(terms)
    with styled() as plt:
        from matplotlib.ticker import MaxNLocator

        fig, axes = plt.subplots(
            len(variants),
            3,
            figsize=(13, 2.7 * len(variants) + 0.6),
            layout="constrained",
            squeeze=False,
        )
        handles: dict[str, Any] = {}
        for row, variant in enumerate(variants):
            mine = [r for r in trained if r[0]["variant"] == variant]
            mine.sort(key=lambda r: int(r[0].get("seed", 0)))
            ax_train, ax_val, ax_lr = axes[row]
            several = len(mine) > 1
            for _meta, steps, epochs in mine:
                alpha = 0.75 if several else 1.0
                run_terms = [t for t in terms if t in steps.columns]
                for term in run_terms:
                    values = pd.to_numeric(steps[term], errors="coerce").to_numpy(float)
                    (line,) = ax_train.plot(
                        steps["step"],
                        _smooth(values),
                        color=colours[term],
                        lw=1.5 if term == "total" else 1.0,
                        alpha=alpha,
                    )
                    handles.setdefault(term, line)
                for term in run_terms:
                    column = f"val_{term}"
                    if column not in epochs.columns:
                        continue
                    ax_val.plot(
                        epochs["epoch"],
                        pd.to_numeric(epochs[column], errors="coerce"),
                        color=colours[term],
                        marker="o",
                        ms=3,
                        lw=1.5 if term == "total" else 1.0,
                        alpha=alpha,
                    )
                for term in run_terms:
                    column = f"prior_val_{term}"
                    if column not in epochs.columns:
                        continue
                    (line,) = ax_val.plot(
                        epochs["epoch"],
                        pd.to_numeric(epochs[column], errors="coerce"),
                        color=colours[term],
                        ls=":",
                        lw=1.2,
                        alpha=alpha,
                    )
                    handles.setdefault("image-blind prior (dotted, its term's colour)", line)
                if "train_total" in epochs.columns:
                    (line,) = ax_val.plot(
                        epochs["epoch"],
                        pd.to_numeric(epochs["train_total"], errors="coerce"),
                        color="black",
                        ls="--",
                        lw=1.0,
                        alpha=0.6,
                    )
                    handles.setdefault("train total (epoch mean)", line)
                ax_lr.plot(steps["step"], steps["lr"], color="tab:purple", lw=1.2, alpha=alpha)
            seeds = ", ".join(str(m.get("seed")) for m, _, _ in mine)
            label = f"{variant} (seed{'s' if several else ''} {seeds})"
            ax_train.set_title(f"{label}: training loss terms", fontsize=9)
            ax_val.set_title(f"{label}: validation loss", fontsize=9)
            ax_lr.set_title(f"{label}: learning rate", fontsize=9)
            for ax in (ax_train, ax_val):
                ax.set_ylabel("loss (nats)")
                if all(np.nanmin(line.get_ydata()) > 0 for line in ax.get_lines()):
                    ax.set_yscale("log")
            ax_train.set_xlabel("optimizer step")
            ax_val.set_xlabel("epoch")
            ax_val.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax_lr.set_xlabel("optimizer step")
            ax_lr.set_ylabel("learning rate")
            ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        fig.legend(
            list(handles.values()),
            [TERM_NAMES.get(t, t) for t in handles],
            loc="outside right upper",
            title="loss term",
        )
        title(fig, heading)
        meta = trained[0][0]
        train = meta.get("train", {})
        lines = [
            "Training terms: per optimizer step (a running mean over 1 % of the steps when "
            "there are more than 300); validation: the same terms on the validation split with "
            "the evaluation transform after each epoch; dashed: the training total's epoch mean; "
            "dotted: the validation existence loss of an image-blind prior (each entity's or "
            "landmark's training base rate), the floor a stream must beat to learn from images. "
            "Log-scale losses where every value is positive. "
            "L = L_exist + α L_ProtoCL + β L_ICL (MeDSLIP variants) with "
            f"α = {train.get('alpha', '?')}, β = {train.get('beta', '?')}; "
            "MedKLIP: existence + α position; global_clip: the symmetric CLIP loss.",
            f"Schedule: {train.get('warmup_steps', '?')} warm-up steps from "
            f"{train.get('warmup_lr', '?')} to {train.get('lr', '?')}, then a per-epoch cosine "
            f"to {train.get('min_lr', '?')}; batch {train.get('batch_size', '?')}, "
            f"{train.get('epochs', '?')} epochs.",
            skipped,
        ]
        footnote(fig, lines)
        return save(fig, out)
