"""IU X-ray / Open-i (Indiana University; Demner-Fushman et al. 2016), Kaggle "raddar" layout.

Tree: ``indiana_projections.csv`` (uid, filename, projection), ``indiana_reports.csv`` (one
report per uid) and the PNGs under ``images/images_normalized/`` (or directly in ``images/``).
Each uid is one study of one patient; reports are linked as ``indiana_reports.csv#uid=<uid>``.
No official split: :mod:`medslip.data.splits` makes a seeded patient-level one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medslip.data.manifest import make_manifest
from medslip.data.readers._tables import read_table

NAME = "iu_xray"


def read(root: Path, projections: tuple[str, ...] | None = ("Frontal",)) -> pd.DataFrame:
    """Manifest of the IU X-ray tree at ``root``; ``projections=None`` keeps laterals too."""
    table = read_table(
        root, "indiana_projections.csv", ["uid", "filename", "projection"], dtype=str
    )
    reports = read_table(root, "indiana_reports.csv", ["uid"], dtype=str)
    if projections is not None:
        table = table[table["projection"].isin(list(projections))]
    folder = (
        "images/images_normalized" if (root / "images/images_normalized").is_dir() else "images"
    )
    has_report = set(reports["uid"])
    out = pd.DataFrame(
        {
            "image_id": table["filename"].str.removesuffix(".png").str.removesuffix(".dcm"),
            "study_id": table["uid"],
            "patient_id": table["uid"],
            "view": table["projection"],
            "path": folder + "/" + table["filename"],
            "report": [
                f"indiana_reports.csv#uid={u}" if u in has_report else "" for u in table["uid"]
            ],
        }
    )
    return make_manifest(out, NAME)
