"""One reader per source, all with the same contract: ``read(root, **options) -> manifest``.

Each module defines ``NAME`` (the dataset name used in config and under ``results/``) and
``read(root: Path, ...) -> pandas.DataFrame`` in the schema of :mod:`medslip.data.manifest`.
A missing official file raises :class:`~medslip.errors.MedslipError` naming it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd

from medslip.errors import MedslipError

READER_MODULES: dict[str, str] = {
    "mimic_cxr_jpg": "medslip.data.readers.mimic",
    "nih_cxr14": "medslip.data.readers.nih",
    "rsna_pneumonia": "medslip.data.readers.rsna",
    "siim_acr": "medslip.data.readers.siim",
    "iu_xray": "medslip.data.readers.iu",
    "covid_chestxray": "medslip.data.readers.covid",
}


def read_dataset(name: str, root: str | Path, **options) -> pd.DataFrame:
    """Read the official-format tree of dataset ``name`` under ``root`` into a manifest."""
    if name not in READER_MODULES:
        raise MedslipError(f"unknown dataset {name!r}; known: {sorted(READER_MODULES)}")
    root = Path(root)
    if not root.is_dir():
        raise MedslipError(f"{name}: dataset root {root} is not a directory")
    return importlib.import_module(READER_MODULES[name]).read(root, **options)
