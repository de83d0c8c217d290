# Config validation and input helpers shared by all rule files.
from medslip.config import validate_config
from medslip.synth.generator import DATASETS

validate_config(config)

SYNTH_DATASETS = list(DATASETS)


wildcard_constraints:
    dataset="|".join(SYNTH_DATASETS),


def synthcxr_datasets():
    """Datasets whose root is null in config, i.e. served by the SynthCXR tree."""
    return [d for d in SYNTH_DATASETS if config["datasets"][d] is None]


def dataset_root(name):
    """Root of an official-format dataset tree: the configured download or the SynthCXR tree."""
    root = config["datasets"][name]
    return root if root is not None else f"results/synthcxr/{name}"


def synthcxr_outputs():
    """Everything SynthCXR produces for the datasets it serves (and its contact sheet when it
    serves MIMIC-CXR-JPG)."""
    datasets = synthcxr_datasets()
    sheet = (
        ["results/figures/synthcxr_examples.png"] if "mimic_cxr_jpg" in datasets else []
    )
    return expand("results/synthcxr/{dataset}", dataset=datasets) + sheet
