"""Output file names of the pretraining stage, shared by the code and the workflow rules (this
module imports nothing heavy, so the Snakefile can read it)."""

JOIN_FILES = {"images": "images.parquet", "counts": "counts.csv"}
"""Files of ``medslip pretrain-data``, by role."""

RUN_FILES = {
    "weights": "model.safetensors",
    "meta": "model.json",
    "steps": "metrics/steps.csv",
    "epochs": "metrics/epochs.csv",
    "checkpoints": "checkpoints",
}
"""Files of a run directory ``results/models/{variant}/seed{seed}/``, by role."""
