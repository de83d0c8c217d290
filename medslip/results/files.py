"""Output names of the results stage, shared by the code and the workflow rules (this module
imports nothing heavy, so the Snakefile can read it).

Every table is a CSV (machine-readable, one value per cell) plus a Markdown twin (value and
95 % interval in one cell, with a caption) under ``results/tables/``.
"""

TABLES_DIR = "results/tables"
"""Folder of every table."""

TABLES = (
    "data_summary",
    "report_labels",
    "label_statistics",
    "zero_shot_classification",
    "zero_shot_grounding",
    "finetune_classification",
    "finetune_segmentation",
    "real_lung_segmentation",
    "disentanglement",
    "ablation",
)
"""Table names (``medslip table NAME`` and one rule each); the first three describe the data and
report stages, the others are built from evaluation metrics files."""


def table_files(name: str) -> dict[str, str]:
    """``{"csv": results/tables/NAME.csv, "md": results/tables/NAME.md}``."""
    return {kind: f"{TABLES_DIR}/{name}.{kind}" for kind in ("csv", "md")}
