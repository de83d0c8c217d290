"""COVID-19 image data collection (Cohen et al. 2020, ieee8023/covid-chestxray-dataset).

Tree: ``metadata.csv``, ``images/``, and optionally
``annotations/semantic_masks_v7labs_lungs.zip`` (V7 Labs lung masks, one PNG per image, named
like the image). Kept: X-ray rows with a frontal view (PA, AP, AP Supine) whose image is present
(the collection is often distributed in part). Labels: ``COVID-19`` (1 if the finding names it)
and the finding string itself. Masks are linked as ``<zip>!<member>``; the clinical notes as
``metadata.csv#filename=<file>``.
"""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pandas as pd

from medslip.data.manifest import labels_json, make_manifest
from medslip.data.readers._tables import read_table

log = logging.getLogger(__name__)
NAME = "covid_chestxray"
FRONTAL = ("PA", "AP", "AP Supine")
V7_ZIP = "annotations/semantic_masks_v7labs_lungs.zip"
V7_FOLDER = "semantic_masks_v7labs_lungs/"


def read(root: Path) -> pd.DataFrame:
    """Manifest of the COVID-19 image collection at ``root``."""
    columns = ["patientid", "finding", "view", "modality", "folder", "filename"]
    meta = read_table(root, "metadata.csv", columns, dtype=str)
    meta = meta[(meta["modality"] == "X-ray") & meta["view"].isin(FRONTAL)]
    on_disk = [
        (root / f / n).is_file()
        for f, n in zip(meta["folder"].fillna(""), meta["filename"].fillna(""), strict=True)
    ]
    if not all(on_disk):
        log.warning(
            "%s: %d frontal X-ray images listed in metadata.csv are not on disk; left out",
            root,
            len(on_disk) - sum(on_disk),
        )
    meta = meta[on_disk]
    members: set[str] = set()
    if (root / V7_ZIP).is_file():
        with zipfile.ZipFile(root / V7_ZIP) as archive:
            members = set(archive.namelist())
    finding = meta["finding"].fillna("")
    out = pd.DataFrame(
        {
            "image_id": meta["filename"],
            "patient_id": meta["patientid"],
            "view": meta["view"],
            "path": meta["folder"] + "/" + meta["filename"],
            "labels": [labels_json({"COVID-19": float("COVID-19" in f)}) for f in finding],
            "mask_path": [
                f"{V7_ZIP}!{V7_FOLDER}{n}" if V7_FOLDER + n in members else ""
                for n in meta["filename"]
            ],
            "report": "metadata.csv#filename=" + meta["filename"],
        }
    )
    return make_manifest(out, NAME)
