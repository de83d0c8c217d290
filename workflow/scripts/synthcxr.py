"""Snakemake script of rule `synthcxr`: generate one SynthCXR dataset with the run's config."""

import logging
from pathlib import Path

from medslip.synth import generate

logging.basicConfig(
    filename=snakemake.log[0],  # noqa: F821
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)
out_dir = Path(snakemake.output.tree).parent  # noqa: F821
generate({"synthcxr": snakemake.params.settings}, out_dir, [snakemake.wildcards.dataset])  # noqa: F821
