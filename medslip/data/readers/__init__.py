"""One reader per source, all with the same contract: ``read(root, **options) -> manifest``.

Each module defines ``NAME`` (the dataset name used in config and under ``results/``) and
``read(root: Path, ...) -> pandas.DataFrame`` in the schema of :mod:`medslip.data.manifest`.
A missing official file raises :class:`~medslip.errors.MedslipError` naming it.

The registry of datasets is :mod:`medslip.datasets`; a reader module is imported when it is
used.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from medslip.datasets import DATASETS
from medslip.errors import MedslipError

if TYPE_CHECKING:
    import pandas as pd


def read_dataset(name: str, root: str | Path, **options) -> pd.DataFrame:
    """Read the official-format tree of dataset ``name`` under ``root`` into a manifest."""
    if name not in DATASETS:
        raise MedslipError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    root = Path(root)
    if not root.is_dir():
        raise MedslipError(f"{name}: dataset root {root} is not a directory")
    return importlib.import_module(DATASETS[name].reader).read(root, **options)
