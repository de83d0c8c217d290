"""Output names of the evaluation stage, shared by the code and the workflow rules (this module
imports nothing heavy, so the Snakefile can read it).

Layout: ``results/eval/{task}/{dataset}/{variant}/seed{seed}/`` with the files of
:data:`EVAL_FILES` (per-image predictions as Parquet, metrics as JSON).
"""

EVAL_ROOT = "results/eval"
"""Root of every evaluation output."""

EVAL_TASKS = ("zeroshot", "grounding", "probe")
"""Evaluation tasks (the ``{task}`` level and the ``medslip evaluate`` subcommands); ``probe`` is
the disentanglement probe on SynthCXR ground truth."""

EVAL_FILES = {"predictions": "predictions.parquet", "metrics": "metrics.json"}
"""Files of one evaluation directory, by role."""


def eval_dir(task: str, dataset: str, variant: str, seed: int | str) -> str:
    """``results/eval/{task}/{dataset}/{variant}/seed{seed}`` (wildcards may be passed as
    ``"{dataset}"`` etc.)."""
    return f"{EVAL_ROOT}/{task}/{dataset}/{variant}/seed{seed}"


FINETUNE_TASKS = {"cls": "finetune_cls", "seg": "finetune_seg"}
"""Fine-tuning tasks: ``medslip finetune`` subcommand -> the ``{task}`` level."""


def finetune_dir(
    task: str, dataset: str, variant: str, seed: int | str, pct: str, ft_seed: int | str
) -> str:
    """``results/eval/{task}/{dataset}/{variant}/seed{seed}/frac{pct}/ft{ft_seed}`` (pretraining
    seed, training-subset percent, fine-tuning seed; wildcards may be passed as strings)."""
    return f"{eval_dir(task, dataset, variant, seed)}/frac{pct}/ft{ft_seed}"
