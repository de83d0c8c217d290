"""One reader per source, all with the same contract: ``read(root, **options) -> manifest``.

Each module defines ``NAME`` (the dataset name used in config and under ``results/``) and
``read(root: Path, ...) -> pandas.DataFrame`` in the schema of :mod:`medslip.data.manifest`.
A missing official file raises :class:`~medslip.errors.MedslipError` naming it.

This module (the registry) imports nothing but the standard library, so the workflow reads
:data:`DATASETS` without medslip's dependencies; a reader module is imported when it is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medslip.errors import MedslipError

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """One source dataset: the module that reads its official layout, and whether SynthCXR
    writes it (then a ``null`` root in config ``datasets`` means its SynthCXR tree; otherwise
    ``null`` leaves the dataset out)."""

    reader: str
    synthcxr: bool


DATASETS: dict[str, Dataset] = {
    "mimic_cxr_jpg": Dataset("medslip.data.readers.mimic", synthcxr=True),
    "nih_cxr14": Dataset("medslip.data.readers.nih", synthcxr=True),
    "rsna_pneumonia": Dataset("medslip.data.readers.rsna", synthcxr=True),
    "siim_acr": Dataset("medslip.data.readers.siim", synthcxr=True),
    "iu_xray": Dataset("medslip.data.readers.iu", synthcxr=False),
    "covid_chestxray": Dataset("medslip.data.readers.covid", synthcxr=False),
}
"""The one registry of dataset names (config ``datasets.<name>``, ``results/data/<name>/``,
``medslip manifest --dataset``) → reader, synthesizable or not."""

SYNTHCXR_DATASETS: tuple[str, ...] = tuple(n for n, d in DATASETS.items() if d.synthcxr)
"""The datasets SynthCXR writes (``medslip.synth.generator`` builds exactly these)."""


def read_dataset(name: str, root: str | Path, **options) -> pd.DataFrame:
    """Read the official-format tree of dataset ``name`` under ``root`` into a manifest."""
    if name not in DATASETS:
        raise MedslipError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}")
    root = Path(root)
    if not root.is_dir():
        raise MedslipError(f"{name}: dataset root {root} is not a directory")
    return importlib.import_module(DATASETS[name].reader).read(root, **options)
