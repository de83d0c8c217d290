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
from medslip.data.readers._tables import official_file, read_boxes, read_table, require_values
from medslip.errors import MedslipError

NAME = "rsna_pneumonia"
DETAILED = ("Lung Opacity", "No Lung Opacity / Not Normal", "Normal")


def _targets(path: Path, table: pd.DataFrame) -> pd.Series:
    """``Target`` as 0/1; anything else is an error naming the file and row."""
    values = pd.to_numeric(table["Target"], errors="coerce")
    bad = ~values.isin([0, 1])
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise MedslipError(
            f"{path}: row {row + 1}: Target {table['Target'].iloc[row]!r} is not 0 or 1 "
            f"({int(bad.sum())} such rows)"
        )
    return values.astype(int)


def read(root: Path) -> pd.DataFrame:
    """Manifest of the RSNA Pneumonia tree at ``root``."""
    coordinates = ["x", "y", "width", "height"]
    table = read_table(root, "stage_2_train_labels.csv", ["patientId", *coordinates, "Target"])
    path = official_file(root, "stage_2_train_labels.csv")
    require_values(path, table, "patientId")
    table["patientId"] = table["patientId"].astype(str).str.strip()
    table["Target"] = _targets(path, table)
    table["box"] = read_boxes(path, table, coordinates)
    given = table["box"].notna()
    wrong = given != (table["Target"] == 1)
    if wrong.any():
        row = int(wrong.to_numpy().nonzero()[0][0])
        what = "a box but Target 0" if given.iloc[row] else "Target 1 but no box"
        raise MedslipError(
            f"{path}: row {row + 1} ({table['patientId'].iloc[row]}): {what} "
            f"({int(wrong.sum())} such rows)"
        )
    detail = read_table(root, "stage_2_detailed_class_info.csv", ["patientId", "class"])
    unknown = ~detail["class"].isin(DETAILED)
    if unknown.any():
        row = int(unknown.to_numpy().nonzero()[0][0])
        raise MedslipError(
            f"{official_file(root, 'stage_2_detailed_class_info.csv')}: row {row + 1}: class "
            f"{detail['class'].iloc[row]!r} is not one of {list(DETAILED)}"
        )
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
