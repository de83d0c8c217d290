"""MIMIC-CXR-JPG 2.x (PhysioNet, credentialed access; Johnson et al. 2019).

Tree: ``files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg``, reports ``files/pXX/pXXXXXXXX/
sXXXXXXXX.txt`` and ``mimic-cxr-2.0.0-{metadata,split,chexpert}.csv[.gz]``. Labels: the 14
CheXpert classes of ``chexpert.csv`` (1 / 0 / -1 uncertain / blank). Split: the official one
(``validate`` is written ``val``). Views: only the listed ``ViewPosition`` values are kept
(MedKLIP/MeDSLIP pretrain on frontal images).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medslip.data.manifest import labels_json, make_manifest
from medslip.data.readers._tables import official_file, read_table, require_values
from medslip.errors import MedslipError

NAME = "mimic_cxr_jpg"
PREFIX = "mimic-cxr-2.0.0"
_SPLIT = {"train": "train", "validate": "val", "test": "test"}


def _integers(path: Path, table: pd.DataFrame, column: str) -> pd.Series:
    """``column`` as int64; a value that is not a whole number is an error naming the row."""
    values = pd.to_numeric(table[column], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise MedslipError(
            f"{path}: row {row + 1}: {column} {table[column].iloc[row]!r} is not a whole number"
        )
    return values.astype("int64")


def _check_labels(path: Path, labels: pd.DataFrame) -> None:
    """Every CheXpert label is 1, 0, -1 (uncertain) or blank; else an error naming the cell."""
    values = labels.apply(pd.to_numeric, errors="coerce")
    bad = (labels.notna() & values.isna()) | ~(values.isna() | values.isin([1, 0, -1]))
    if bad.to_numpy().any():
        row, col = (int(i[0]) for i in bad.to_numpy().nonzero())
        raise MedslipError(
            f"{path}: row {row + 1}: {labels.columns[col]} {labels.iloc[row, col]!r} is not "
            "1, 0, -1 or blank"
        )


def read(root: Path, views: tuple[str, ...] | list[str] | None) -> pd.DataFrame:
    """Manifest of the MIMIC-CXR-JPG tree at ``root`` with the ``ViewPosition`` values ``views``
    (config ``data.mimic_views``); ``views=None`` keeps every view."""
    meta_columns = ["dicom_id", "subject_id", "study_id", "ViewPosition", "Rows", "Columns"]
    meta = read_table(root, f"{PREFIX}-metadata.csv", meta_columns, dtype={"dicom_id": str})
    split = read_table(root, f"{PREFIX}-split.csv", ["dicom_id", "split"], dtype={"dicom_id": str})
    chexpert = read_table(root, f"{PREFIX}-chexpert.csv", ["subject_id", "study_id"])
    meta_path = official_file(root, f"{PREFIX}-metadata.csv")
    for column in ("dicom_id", "subject_id", "study_id"):
        require_values(meta_path, meta, column)
        if column != "dicom_id":
            meta[column] = _integers(meta_path, meta, column)
    chexpert_path = official_file(root, f"{PREFIX}-chexpert.csv")
    chexpert["study_id"] = _integers(chexpert_path, chexpert, "study_id")
    _check_labels(chexpert_path, chexpert.drop(columns=["subject_id", "study_id"]))
    bad = set(split["split"]) - set(_SPLIT)
    if bad:
        raise MedslipError(f"{root}: {PREFIX}-split.csv has unknown split names {sorted(bad)}")
    meta["ViewPosition"] = meta["ViewPosition"].fillna("").astype(str)
    if views is not None:
        meta = meta[meta["ViewPosition"].isin(list(views))]
    frame = meta.merge(split[["dicom_id", "split"]], on="dicom_id", how="left")
    if frame["split"].isna().any():
        lost = frame.loc[frame["split"].isna(), "dicom_id"].iloc[0]
        raise MedslipError(f"{root}: image {lost} is missing from {PREFIX}-split.csv")
    classes = [c for c in chexpert.columns if c not in ("subject_id", "study_id")]
    labels = {
        int(study): labels_json(dict(zip(classes, values, strict=True)))
        for study, values in zip(chexpert["study_id"], chexpert[classes].to_numpy(), strict=True)
    }
    subject = frame["subject_id"].astype(int).astype(str)
    study = frame["study_id"].astype(int).astype(str)
    folder = "files/p" + subject.str[:2] + "/p" + subject + "/s" + study
    out = pd.DataFrame(
        {
            "image_id": frame["dicom_id"],
            "study_id": study,
            "patient_id": subject,
            "split": frame["split"].map(_SPLIT),
            "view": frame["ViewPosition"],
            "path": folder + "/" + frame["dicom_id"] + ".jpg",
            "width": frame["Columns"].astype("int32"),
            "height": frame["Rows"].astype("int32"),
            "labels": [labels.get(int(s), "{}") for s in frame["study_id"]],
            "report": folder + ".txt",
        }
    )
    return make_manifest(out, NAME)
