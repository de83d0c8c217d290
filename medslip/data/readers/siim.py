"""SIIM-ACR Pneumothorax Segmentation (SIIM / ACR / Kaggle 2019).

Tree: ``*.dcm`` anywhere below the root (``dicom-images-train/<study>/<series>/<ImageId>.dcm``)
and ``train-rle.csv`` (``ImageId, EncodedPixels``: relative column-major RLE, several rows per
image, ``-1`` when empty; see :mod:`medslip.rle`). Images listed in the CSV without a DICOM keep
an empty ``path`` (preprocessing quarantines them); DICOMs not in the CSV (the test set) are
left out. ``PatientID``, ``Rows``, ``Columns`` and ``ViewPosition`` come from the DICOM headers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medslip.data.manifest import labels_json, make_manifest
from medslip.data.readers._tables import official_file, read_table, require_values
from medslip.errors import MedslipError
from medslip.rle import EMPTY

NAME = "siim_acr"
_HEADER_TAGS = ["PatientID", "Rows", "Columns", "ViewPosition"]


def _header(path: Path) -> dict:
    """PatientID, Rows, Columns, ViewPosition of a DICOM ({} if the header is unreadable)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except Exception:  # an unreadable header is quarantined at preprocessing
        return {}
    return {tag: ds.get(tag, "") for tag in _HEADER_TAGS}


def _dicoms(root: Path) -> dict[str, Path]:
    """ImageId (file stem) -> DICOM path below ``root``; an ImageId found in two places is an
    error naming both (which one is the image of the labels cannot be told)."""
    dicoms: dict[str, Path] = {}
    for path in sorted(root.rglob("*.dcm")):
        if path.stem in dicoms:
            raise MedslipError(
                f"{root}: ImageId {path.stem} is in two DICOM files, {dicoms[path.stem]} and "
                f"{path}; remove the wrong one"
            )
        dicoms[path.stem] = path
    return dicoms


def read(root: Path) -> pd.DataFrame:
    """Manifest of the SIIM-ACR tree at ``root``."""
    table = read_table(root, "train-rle.csv", ["ImageId", "EncodedPixels"], dtype=str)
    require_values(official_file(root, "train-rle.csv"), table, "ImageId")
    dicoms = _dicoms(root)
    rows = []
    for image_id, group in table.groupby("ImageId", sort=True):
        image_id = image_id.strip()
        rles = [r.strip() for r in group["EncodedPixels"].fillna(EMPTY)]
        masks = [r for r in rles if r != EMPTY]
        path = dicoms.get(image_id)
        header = _header(path) if path is not None else {}
        rows.append(
            {
                "image_id": image_id,
                "patient_id": str(header.get("PatientID", "")),
                "view": str(header.get("ViewPosition", "")),
                "path": path.relative_to(root).as_posix() if path is not None else "",
                "width": int(header.get("Columns") or 0),
                "height": int(header.get("Rows") or 0),
                "labels": labels_json({"Pneumothorax": float(bool(masks))}),
                "mask_rle": masks,
            }
        )
    return make_manifest(pd.DataFrame(rows), NAME)
