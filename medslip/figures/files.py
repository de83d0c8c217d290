"""Output names of the figures stage, shared by the code and the workflow rules (this module
imports nothing heavy, so the Snakefile can read it).

Every figure is a PNG (150 dpi) plus a PDF twin of the same stem under ``results/figures/``.
"""

FIGURES_DIR = "results/figures"
"""Folder of every figure."""

FIGURES = (
    "roc",
    "grounding_overlays",
    "label_efficiency",
    "pretraining_curves",
    "ablation",
    "disentanglement",
)
"""Figure kinds (``medslip figure KIND`` and one rule each); ``roc`` is drawn once per zero-shot
dataset, as ``roc_{dataset}``, every other kind once, under its own name."""

FORMATS = ("png", "pdf")
"""Formats of every figure (the PNG is the one named on the command line; the PDF is its twin)."""


def figure_name(kind: str, dataset: str | None = None) -> str:
    """The file stem of a figure: ``roc_{dataset}`` or the kind itself."""
    if kind not in FIGURES:
        raise ValueError(f"unknown figure {kind!r}; known: {', '.join(FIGURES)}")
    if (kind == "roc") != (dataset is not None):
        raise ValueError("a dataset is given for the roc figure and only for it")
    return f"roc_{dataset}" if kind == "roc" else kind


def figure_files(name: str) -> dict[str, str]:
    """``{"png": results/figures/NAME.png, "pdf": results/figures/NAME.pdf}``."""
    return {fmt: f"{FIGURES_DIR}/{name}.{fmt}" for fmt in FORMATS}
