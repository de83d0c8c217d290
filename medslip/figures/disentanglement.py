"""``disentanglement``: the linear-probe test of the paper's disentanglement claim, from
``disentanglement.csv`` (``variant, stream (pathology|anatomy), target (presence|landmark),
auc, auc_lo, auc_hi, n_seeds``; ``source``/``split`` when present): per variant a 2 × 2 dot plot,
probe AUC by target, the two streams side by side with 95 % interval whiskers, and whether each
stream is better at its own target (rows ``stream == "own - other"``: the paired difference with
its interval). A table without rows gives a figure saying so."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medslip.figures.inputs import numeric, read_table
from medslip.figures.style import (
    count_range,
    fmt,
    footnote,
    message_figure,
    save,
    styled,
    title,
    variant_order,
    whiskers,
)

STREAMS = ("pathology", "anatomy")
TARGETS = ("presence", "landmark")
OWN = {"pathology": "presence", "anatomy": "landmark"}
STREAM_COLOURS = {"pathology": "#d55e00", "anatomy": "#0072b2"}
HEADING = "Disentanglement probe: which stream encodes what"
EMPTY = "no probe results (needs SynthCXR data for evaluate.probe.dataset)"
DIFFERENCE = "own - other"
"""``stream`` of the table rows with a target's paired difference (own stream − other)."""
DIFFERENCE_COLUMNS = [
    "auc_difference",
    "auc_difference_lo",
    "auc_difference_hi",
    "auc_difference_mdd",
]


def verdict(differences: dict[str, tuple[float, ...]]) -> list[str]:
    """Two lines per stream from the table's paired differences ({target: (own − other, lo,
    hi[, minimal detectable difference])}): better or worse at its own target when the interval
    excludes 0, then the difference, its interval and what the probe could have detected."""
    lines = []
    for stream, target in OWN.items():
        value, lo, hi, *mdd = differences.get(target, (np.nan, np.nan, np.nan))
        if not np.isfinite(value):
            lines.append(f"{stream} on {target}: n/a")
            continue
        word = "better" if lo > 0 else "worse" if hi < 0 else "not distinguishable"
        detectable = f", detectable {fmt(mdd[0], 2)}" if mdd and np.isfinite(mdd[0]) else ""
        lines.append(f"{stream} {word} on {target}")
        lines.append(f"(Δ {fmt(value, 2)} [{fmt(lo, 2)}, {fmt(hi, 2)}]{detectable})")
    return lines


def draw_disentanglement(table: str | Path, out: str | Path):
    """Draw the probe figure of ``table`` into ``out`` (PNG) and its PDF twin."""
    frame = read_table(
        table,
        ["variant", "stream", "target", "auc"],
        ["auc_lo", "auc_hi", "n_seeds", *DIFFERENCE_COLUMNS],
    )
    if frame.empty:
        return message_figure(HEADING, EMPTY, out, [f"{table} has no rows."])
    frame = numeric(frame, ["auc", "auc_lo", "auc_hi", "n_seeds", *DIFFERENCE_COLUMNS], table)
    for column in ("source", "split"):
        frame[column] = frame[column].fillna("").astype(str) if column in frame else ""
    groups = sorted(
        {(r.variant, r.source, r.split) for r in frame.itertuples()},
        key=lambda g: (variant_order(frame["variant"]).index(g[0]), g[1], g[2]),
    )
    ncols = min(3, len(groups))
    nrows = -(-len(groups) // ncols)
    with styled() as plt:
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(4.4 * ncols + 0.6, 3.9 * nrows + 0.4),
            layout="constrained",
            sharey=True,
            squeeze=False,
        )
        handles = {}
        for ax, (variant, source, split) in zip(axes.flat, groups, strict=False):
            mine = frame[
                (frame["variant"] == variant)
                & (frame["source"] == source)
                & (frame["split"] == split)
            ]
            gaps = mine[mine["stream"] == DIFFERENCE].set_index("target")
            differences = {t: tuple(gaps.loc[t, DIFFERENCE_COLUMNS]) for t in gaps.index}
            for k, stream in enumerate(STREAMS):
                rows = mine[mine["stream"] == stream].set_index("target").reindex(list(TARGETS))
                x = np.arange(len(TARGETS)) + (k - 0.5) * 0.3
                values = rows["auc"].to_numpy()
                handles[stream] = ax.errorbar(
                    x,
                    values,
                    yerr=whiskers(values, rows["auc_lo"], rows["auc_hi"]),
                    fmt="o",
                    ms=6,
                    capsize=3,
                    color=STREAM_COLOURS[stream],
                )
                for xi, value in zip(x, values, strict=True):
                    if not np.isfinite(value):
                        continue
                    ax.annotate(
                        fmt(value, 2),
                        (xi, value),
                        xytext=(7, 0) if k else (-7, 0),
                        textcoords="offset points",
                        ha="left" if k else "right",
                        va="center",
                        fontsize=7,
                    )
            ax.axhline(0.5, color="0.6", lw=0.8, ls=":")
            ax.set_xticks(range(len(TARGETS)), [f"finding {t}" for t in TARGETS])
            ax.set_xlim(-0.6, len(TARGETS) - 0.4)
            ax.set_ylim(0.0, 1.05)
            where = f" ({source}, {split})" if source or split else ""
            ax.set_title(f"{variant}{where}\n" + "\n".join(verdict(differences)), fontsize=8.5)
        for ax in axes.flat[len(groups) :]:
            ax.set_axis_off()
        for ax in axes[:, 0]:
            ax.set_ylabel("probe test AUC")
        axes[0, 0].legend(
            [handles[s] for s in STREAMS],
            [f"{s}-stream features" for s in STREAMS],
            loc="lower right",
            fontsize=7.5,
        )
        title(fig, HEADING)
        footnote(
            fig,
            [
                "Linear probes (train/val/test of the SynthCXR test split's patients) from the "
                "pathology-stream and anatomy-stream features of each token a finding covers to "
                "(a) the finding's kind and (b) its landmark; whiskers: 95 % intervals; "
                f"n seeds: {count_range(frame['n_seeds'])}. "
                "The paper's claim holds when each stream is better at its own target "
                "(pathology → presence, anatomy → landmark): the interval of the paired "
                "difference (Δ, own − other) excludes 0; detectable: the smallest Δ the probe-test "
                "tokens could detect (5 % test, 80 % power). Dotted: chance.",
            ],
        )
        return save(fig, out)
