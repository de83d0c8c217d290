"""RSNA Pneumonia Detection Challenge, stage 2 (RSNA / Kaggle 2018; images from NIH CXR14).

Tree: ``stage_2_train_images/<patientId>.dcm``, ``stage_2_train_labels.csv`` (one row per box,
or one box-less row for negatives), ``stage_2_detailed_class_info.csv``. Labels: ``Pneumonia``
(= Target) and the detailed class. No official test labels: the split comes from
:mod:`medslip.data.splits`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from medslip.data.manifest import labels_json, make_manifest
from medslip.data.readers._tables import official_file, read_boxes, read_table

NAME = "rsna_pneumonia"
DETAILED = ("Lung Opacity", "No Lung Opacity / Not Normal", "Normal")


def read(root: Path) -> pd.DataFrame:
    """Manifest of the RSNA Pneumonia tree at ``root``."""
    coordinates = ["x", "y", "width", "height"]
    table = read_table(root, "stage_2_train_labels.csv", ["patientId", *coordinates, "Target"])
    path = official_file(root, "stage_2_train_labels.csv")
    table["box"] = read_boxes(path, table, coordinates)
    detail = read_table(root, "stage_2_detailed_class_info.csv", ["patientId", "class"])
    detail = detail.drop_duplicates("patientId")
    detailed = dict(zip(detail["patientId"], detail["class"], strict=True))
    rows = []
    for pid, group in table.groupby("patientId", sort=True):
        boxes = [["Lung Opacity", *box] for box in group["box"] if box is not None]
        values = {"Pneumonia": float(group["Target"].max())}
        if pid in detailed:
            values |= {c: float(detailed[pid] == c) for c in DETAILED}
        rows.append(
            {
                "image_id": pid,
                "patient_id": pid,
                "study_id": pid,
                "path": f"stage_2_train_images/{pid}.dcm",
                "labels": labels_json(values),
                "boxes": json.dumps(boxes),
            }
        )
    return make_manifest(pd.DataFrame(rows), NAME)
