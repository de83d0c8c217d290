"""The house style of every figure: headless Agg backend, seaborn's paper style, one colour per
variant (the same in every figure), a bold title, a wrapped footnote with the protocol, and a
deterministic PNG (150 dpi) + PDF twin written atomically."""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from medslip.atomic import atomic_path
from medslip.errors import MedslipError
from medslip.variants import VARIANT_NAMES, variant_rank

DPI = 150
"""Resolution of every PNG."""
FOOTNOTE_SIZE = 7.5
TRUTH_COLOUR = "#39ff14"
"""Ground-truth outlines of the grounding overlays."""
TAU_COLOUR = "#00e5ff"
"""The ``map > τ`` contour of the grounding overlays."""


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (figures never need a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rc() -> dict[str, Any]:
    import seaborn as sns

    rc = dict(sns.axes_style("whitegrid")) | dict(sns.plotting_context("paper", font_scale=1.1))
    return rc | {
        "pdf.fonttype": 42,
        "axes.titleweight": "bold",
        "axes.titlesize": 10,
        "legend.frameon": False,
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "image.interpolation": "nearest",
    }


@contextlib.contextmanager
def styled() -> Iterator[Any]:
    """Draw inside this context (it yields ``pyplot``): seaborn's paper style, white grid."""
    plt = pyplot()
    with plt.rc_context(_rc()):
        yield plt


def variant_colours(variants: Iterable[str]) -> dict[str, Any]:
    """A fixed colour per variant: the variant's place in the registry picks it from the
    colour-blind palette, so a variant has the same colour in every figure."""
    import seaborn as sns

    palette = sns.color_palette("colorblind", 10)
    extra = iter(range(len(VARIANT_NAMES), 10 * len(VARIANT_NAMES)))
    out = {}
    for v in variants:
        index = VARIANT_NAMES.index(v) if v in VARIANT_NAMES else next(extra)
        out[v] = palette[index % len(palette)]
    return out


def variant_order(variants: Iterable[str]) -> list[str]:
    """Variants in the registry's order, unknown ones after, by name."""
    return sorted(set(variants), key=lambda v: (variant_rank(v), v))


def title(fig, text: str) -> None:
    """The figure's bold title."""
    fig.suptitle(text, fontsize=12, fontweight="bold")


def footnote(fig, lines: Iterable[str]) -> None:
    """Caption text under the axes (protocol, τ, seeds, data source), wrapped to the figure's
    width; ``savefig`` with a tight box keeps it in the picture."""
    width = max(40, int(fig.get_figwidth() * 72 / (FOOTNOTE_SIZE * 0.52)))
    text = "\n".join(textwrap.fill(line, width) for line in lines if line)
    if text:
        fig.text(0.01, -0.01, text, ha="left", va="top", fontsize=FOOTNOTE_SIZE, color="0.25")


def whiskers(values, lo, hi) -> np.ndarray:
    """(2, N) error-bar lengths of ``values`` to their interval; 0 where the interval (or the
    value) is NaN, so a point without an interval is drawn without whiskers."""
    values, lo, hi = (np.asarray(a, dtype=float) for a in (values, lo, hi))
    below, above = values - lo, hi - values
    out = np.stack([below, above])
    return np.where(np.isfinite(out), np.clip(out, 0, None), 0.0)


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a label; ``n/a`` for None or NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):.{digits}f}"


def fmt_interval(value: Any, ci: Any, digits: int = 3) -> str:
    """``0.812 [0.771, 0.850]`` (the interval left out when unknown)."""
    text = fmt(value, digits)
    if text != "n/a" and ci is not None and len(ci) == 2 and all(fmt(c) != "n/a" for c in ci):
        text += f" [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"
    return text


def count_range(values: Iterable[Any]) -> str:
    """``3`` or ``1–3`` for a set of counts (seeds per cell); ``?`` when none is known."""
    finite = [int(v) for v in np.asarray(list(values), dtype=float) if np.isfinite(v)]
    if not finite:
        return "?"
    lo, hi = min(finite), max(finite)
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def save(fig, out: str | Path) -> list[Path]:
    """Write ``out`` (a ``.png``) and its ``.pdf`` twin atomically, close the figure, return
    both paths. The files carry no creation date, so the same inputs give the same bytes."""
    plt = pyplot()
    png = Path(out)
    if png.suffix != ".png":
        raise MedslipError(f"{png}: --out must name the PNG (the PDF twin gets its stem)")
    pdf = png.with_suffix(".pdf")
    try:
        with atomic_path(png) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.15)
        with atomic_path(pdf) as tmp:
            fig.savefig(
                tmp,
                format="pdf",
                bbox_inches="tight",
                pad_inches=0.15,
                metadata={"CreationDate": None, "ModDate": None},
            )
    finally:
        plt.close(fig)
    return [png, pdf]


def message_figure(heading: str, message: str, out: str | Path, notes: Iterable[str] = ()):
    """A figure that says why there is nothing to plot (instead of failing the workflow)."""
    with styled() as plt:
        fig, ax = plt.subplots(figsize=(7, 2.6), layout="constrained")
        ax.set_axis_off()
        ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True)
        title(fig, heading)
        footnote(fig, notes)
        return save(fig, out)
