"""The registry of source datasets: every dataset name of config ``datasets.<name>``,
``results/data/<name>/`` and ``medslip manifest --dataset``, the module that reads its official
layout, and whether SynthCXR writes it. Standard library only (the workflow reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def data_sources(config: dict[str, Any]) -> list[str]:
    """Every dataset the data layer of a run reads, in registry order: those SynthCXR serves
    and those with a root set in config ``datasets``."""
    return [n for n, d in DATASETS.items() if d.synthcxr or config["datasets"][n] is not None]
