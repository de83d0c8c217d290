"""NIH ChestX-ray14 (NIH Clinical Center; Wang et al., CVPR 2017).

Tree: ``images/*.png`` (1024x1024), ``Data_Entry_2017_v2020.csv``, ``train_val_list.txt``,
``test_list.txt``, ``BBox_List_2017.csv`` (boxes in the 1024x1024 image pixels). Labels: the 14
classes, 1/0 from ``Finding Labels``. Split: official ``test`` and ``train`` (= train_val; the
validation part is carved out by :mod:`medslip.data.splits`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from medslip.data.manifest import labels_json, make_manifest
from medslip.data.readers._tables import official_file, read_boxes, read_table, require_values
from medslip.errors import MedslipError
from medslip.vocab import CHESTXRAY14_CLASSES

NAME = "nih_cxr14"
NO_FINDING = "No Finding"
# BBox_List_2017.csv spells one class differently from Data_Entry.
_BOX_LABEL = {"Infiltrate": "Infiltration"}


def _id_list(root: Path, name: str) -> set[str]:
    path = official_file(root, name)
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def _boxes(root: Path) -> dict[str, list]:
    table = read_table(root, "BBox_List_2017.csv", allow_empty=True)
    path = official_file(root, "BBox_List_2017.csv")
    if table.shape[1] < 6:
        raise MedslipError(f"{path}: expected Image Index, Finding Label and 4 box columns")
    boxes: dict[str, list] = {}
    checked = read_boxes(path, table, list(table.columns[2:6]))
    for name, label, box in zip(table.iloc[:, 0], table.iloc[:, 1], checked, strict=True):
        if box is not None:
            boxes.setdefault(str(name), []).append([_BOX_LABEL.get(label, label), *box])
    return boxes


def _findings(path: Path, row: int, value: object) -> set[str]:
    """The classes of one ``Finding Labels`` cell (``A|B`` or ``No Finding``); a blank cell or
    a name that is not a class is an error naming the file and row (1-based, header not
    counted)."""
    names = {n.strip() for n in str(value).split("|")} if isinstance(value, str) else {""}
    unknown = sorted(names - {*CHESTXRAY14_CLASSES, NO_FINDING})
    if unknown or (NO_FINDING in names and len(names) > 1):
        raise MedslipError(
            f"{path}: row {row + 1}: Finding Labels {value!r} is not '{NO_FINDING}' or classes "
            f"of ChestX-ray14 joined by '|' (unknown: {unknown or [NO_FINDING]})"
        )
    return names


def read(root: Path) -> pd.DataFrame:
    """Manifest of the NIH ChestX-ray14 tree at ``root``."""
    columns = ["Image Index", "Finding Labels", "Patient ID", "View Position"]
    entries = read_table(root, "Data_Entry_2017_v2020.csv", columns, dtype=str)
    table = official_file(root, "Data_Entry_2017_v2020.csv")
    for column in ("Image Index", "Patient ID"):
        require_values(table, entries, column)
    findings = [_findings(table, row, value) for row, value in enumerate(entries["Finding Labels"])]
    test, train_val = _id_list(root, "test_list.txt"), _id_list(root, "train_val_list.txt")
    names = entries["Image Index"].astype(str)
    unknown = set(names) - test - train_val
    if unknown:
        raise MedslipError(f"{root}: {len(unknown)} images in no split list, e.g. {min(unknown)}")
    boxes = _boxes(root)
    labels = [labels_json({c: float(c in f) for c in CHESTXRAY14_CLASSES}) for f in findings]
    out = pd.DataFrame(
        {
            "image_id": names.str.removesuffix(".png"),
            "study_id": names.str.removesuffix(".png"),
            "patient_id": entries["Patient ID"].str.strip(),
            "split": ["test" if n in test else "train" for n in names],
            "view": entries["View Position"].astype(str),
            "path": "images/" + names,
            "labels": labels,
            "boxes": [json.dumps(boxes.get(n, [])) for n in names],
        }
    )
    return make_manifest(out, NAME)
