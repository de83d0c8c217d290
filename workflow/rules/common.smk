# Config validation and input helpers shared by all rule files.
import json
import shlex

from medslip.config import validate_config
from medslip.settings import preset
from medslip.data.readers import DATASETS, SYNTHCXR_DATASETS

validate_config(config)

SYNTH_DATASETS = list(SYNTHCXR_DATASETS)


wildcard_constraints:
    dataset="|".join(SYNTH_DATASETS),


def synthcxr_datasets():
    """Datasets whose root is null in config, i.e. served by the SynthCXR tree."""
    return [d for d in SYNTH_DATASETS if config["datasets"][d] is None]


def dataset_root(name):
    """Root of an official-format dataset tree: the configured download or the SynthCXR tree."""
    root = config["datasets"][name]
    return root if root is not None else f"results/synthcxr/{name}"


def data_sources():
    """Every dataset the data layer reads: the SynthCXR-served ones and those with a root set."""
    return [
        name
        for name, dataset in DATASETS.items()
        if dataset.synthcxr or config["datasets"][name] is not None
    ]


def mimic_reports_root():
    """Root the MIMIC manifest's report paths are relative to (datasets.mimic_cxr_reports, or
    the MIMIC-CXR-JPG root)."""
    return config["datasets"]["mimic_cxr_reports"] or dataset_root("mimic_cxr_jpg")


def synthcxr_outputs():
    """Everything SynthCXR produces for the datasets it serves (and its contact sheet when it
    serves MIMIC-CXR-JPG)."""
    datasets = synthcxr_datasets()
    sheet = (
        ["results/figures/synthcxr_examples.png"] if "mimic_cxr_jpg" in datasets else []
    )
    return expand("results/synthcxr/{dataset}", dataset=datasets) + sheet


def config_json(*keys):
    """The listed top-level config keys (and the selected preset) as one shell-quoted JSON."""
    part = {k: config[k] for k in keys} | {
        "preset": config["preset"],
        "presets": {config["preset"]: preset(config)},
    }
    return shlex.quote(json.dumps(part, sort_keys=True))
