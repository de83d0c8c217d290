"""The SynthCXR contact sheet: images with each finding outlined and labelled, report beside."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from medslip.atomic import atomic_path
from medslip.rle import decode_siim


def pick_studies(images: pd.DataFrame, n: int) -> list[int]:
    """Row positions of ``n`` images covering as many finding kinds as possible (greedy), one
    normal study first."""
    chosen: list[int] = []
    normal = [i for i, k in enumerate(images["kinds"]) if len(k) == 0]
    if normal:
        chosen.append(normal[0])
    covered: set[str] = set()
    rest = [i for i in range(len(images)) if i not in chosen]
    while len(chosen) < min(n, len(images)):
        best = max(rest, key=lambda i: (len(set(images["kinds"].iloc[i]) - covered), -i))
        chosen.append(best)
        rest.remove(best)
        covered |= set(images["kinds"].iloc[best])
    return chosen


def contact_sheet(
    tree: str | os.PathLike, truth: str | os.PathLike, out: str | os.PathLike, n: int
) -> None:
    """Draw ``n`` studies of a SynthCXR MIMIC tree into ``out`` (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    tree, truth, out = Path(tree), Path(truth), Path(out)
    images = pd.read_parquet(truth / "images.parquet")
    findings = pd.read_parquet(truth / "findings.parquet")
    studies = pd.read_parquet(truth / "studies.parquet").set_index("study_id")
    rows = pick_studies(images, n)
    cols = 2
    fig, axes = plt.subplots(
        (len(rows) + cols - 1) // cols,
        2 * cols,
        figsize=(8.5 * cols, 4.2 * ((len(rows) + 1) // cols)),
        gridspec_kw={"width_ratios": [1, 1.25] * cols},
        squeeze=False,
    )
    cmap = plt.get_cmap("tab10")
    for ax in axes.ravel():
        ax.axis("off")
    for k, i in enumerate(rows):
        row = images.iloc[i]
        ax_img, ax_txt = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
        pixels = np.asarray(Image.open(tree / row["path"]).convert("L"))
        ax_img.imshow(pixels, cmap="gray", vmin=0, vmax=255)
        size = pixels.shape[0]
        for j, f in enumerate(findings[findings["image_id"] == row["image_id"]].itertuples()):
            mask = decode_siim(f.mask_rle, size, size)
            colour = cmap(j % 10)
            ax_img.contour(mask, levels=[0.5], colors=[colour], linewidths=1.2)
            label = f"{f.kind} @ {f.landmark}" + (" (faint)" if f.uncertain else "")
            ax_img.text(
                2,
                10 + 11 * j,
                label,
                color=colour,
                fontsize=7,
                va="top",
                bbox={"facecolor": "black", "alpha": 0.55, "pad": 1, "lw": 0},
            )
        ax_img.set_title(f"p{row['patient_id']} s{row['study_id']} {row['view']}", fontsize=8)
        report = studies.loc[row["study_id"], "report"]
        wrapped = "\n".join(textwrap.fill(line, 82) or "" for line in report.splitlines())
        ax_txt.text(0, 1, wrapped, fontsize=6.5, family="monospace", va="top", wrap=True)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
