"""Output names of the evaluation stage, shared by the code and the workflow rules (this module
imports nothing heavy, so the Snakefile can read it).

Layout: ``results/eval/{task}/{dataset}/{variant}/seed{seed}/`` with the files of
:data:`EVAL_FILES` (per-image predictions as Parquet, metrics as JSON).
"""

EVAL_ROOT = "results/eval"
"""Root of every evaluation output."""

EVAL_TASKS = ("zeroshot", "grounding")
"""Evaluation tasks (the ``{task}`` level and the ``medslip evaluate`` subcommands)."""

EVAL_FILES = {"predictions": "predictions.parquet", "metrics": "metrics.json"}
"""Files of one evaluation directory, by role."""


def eval_dir(task: str, dataset: str, variant: str, seed: int | str) -> str:
    """``results/eval/{task}/{dataset}/{variant}/seed{seed}`` (wildcards may be passed as
    ``"{dataset}"`` etc.)."""
    return f"{EVAL_ROOT}/{task}/{dataset}/{variant}/seed{seed}"
