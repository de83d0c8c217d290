"""Every output file name of the workflow, by stage: one definition shared by the code
and the rules (standard library only, so the Snakefile reads it without medslip's
dependencies installed)."""

from __future__ import annotations

# ---- reports (medslip parse-reports) ------------------------------------------------------------
REPORT_FILES = (
    "triplets.parquet",
    "label_matrix.npy",
    "uncertain_mask.npy",
    "report_ids.txt",
    "labels_chestxray14.parquet",
    "labels_chexpert.parquet",
    "skipped.csv",
    "counts.json",
)
"""Every file of a report-stage output directory (one chunk, or the gathered chunks)."""


# ---- data (medslip manifest, splits, preprocess) ------------------------------------------------
BACKENDS = ("lmdb", "parquet")
"""Shard storage backends (config ``data.backend``)."""
SUFFIX = {"lmdb": ".lmdb", "parquet": ".parquet"}
"""File suffix of a shard, by backend."""

SIDECARS: dict[str, str] = {
    "index": ".index.parquet",
    "quarantine": ".quarantine.csv",
    "counts": ".json",
}
"""Side files of one shard ``<stem><suffix>``: per-image geometry and boxes, quarantined images,
counts and sha256."""
GATHERED: dict[str, str] = {
    "summary": "summary.json",
    "index": "index.parquet",
    "quarantine": "quarantine.csv",
}
"""Files the gather step writes beside the shards: the shard summary (settings, counts, per-shard
file and sha256), the per-image index and the quarantine table."""


def shard_stem(index: int | str) -> str:
    """Stem of shard ``index``: ``shard-00003`` (a string is used as is, e.g. a wildcard)."""
    return f"shard-{index:05d}" if isinstance(index, int) else f"shard-{index}"


def shard_files(index: int | str, backend: str) -> dict[str, str]:
    """File names of shard ``index``: ``{"shard": "shard-00003.lmdb", "index": ..., ...}``."""
    stem = shard_stem(index)
    return {"shard": stem + SUFFIX[backend]} | {k: stem + v for k, v in SIDECARS.items()}


def subset_column(fraction: float) -> str:
    """Column name of a training subset in ``splits.csv``, e.g. ``subset_1pct`` or
    ``subset_100pct``."""
    pct = fraction * 100
    return f"subset_{pct:g}pct"


# ---- text books, pretraining (medslip text-books, pretrain-data, pretrain, import-checkpoint) ---
MODELS_DIR = "results/models"
"""Root of the text books and of every run directory."""

TEXT_BOOKS = {
    "config": "text_books.safetensors",
    "official": "text_books_official.safetensors",
}
"""Text-books files in :data:`MODELS_DIR` (each with a ``.json`` sidecar), by text side: built
from config ``text`` (the models this workflow trains) or with the official settings (imported
checkpoints, ``medslip text-books --official``)."""


def text_books_path(imported: bool, models_dir: str = MODELS_DIR) -> str:
    """The books a model reads: the official ones for an imported checkpoint, else config's."""
    return f"{models_dir}/{TEXT_BOOKS['official' if imported else 'config']}"


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

IMPORTED_SEED = 0
"""The seed level of an imported checkpoint's run directory (``results/models/{variant}/seed0/``):
the authors trained it once; the workflow imports it, whatever ``pretrain.seeds`` says."""


# ---- evaluation and fine-tuning (medslip evaluate, finetune) ------------------------------------
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


GROUNDING_CONTROLS = ("brightness", "mean_map", "oracle")
"""Model-free grounding maps scored beside the models (:mod:`medslip.evaluate.controls`)."""


def control_dir(dataset: str, control: str, root: str = EVAL_ROOT) -> str:
    """``{root}/grounding/{dataset}/control_{control}/seed0``: a grounding control's outputs,
    laid out as a model run's (variant ``control_{control}``, seed 0)."""
    return f"{root}/grounding/{dataset}/control_{control}/seed0"


FINETUNE_TASKS = {"cls": "finetune_cls", "seg": "finetune_seg"}
"""Fine-tuning tasks: ``medslip finetune`` subcommand -> the ``{task}`` level."""


def finetune_dir(
    task: str, dataset: str, variant: str, seed: int | str, pct: str, ft_seed: int | str
) -> str:
    """``results/eval/{task}/{dataset}/{variant}/seed{seed}/frac{pct}/ft{ft_seed}`` (pretraining
    seed, training-subset percent, fine-tuning seed; wildcards may be passed as strings)."""
    return f"{eval_dir(task, dataset, variant, seed)}/frac{pct}/ft{ft_seed}"


# ---- model cards (medslip model-card) ---------------------------------------------------------
CARDS_DIR = "results/model_cards"
"""Folder of the model cards: written after a run's evaluations, so outside the run directory
(``results/models`` is complete before any evaluation starts)."""


def model_card_path(variant: str, seed: int | str) -> str:
    """``results/model_cards/{variant}/seed{seed}/MODEL_CARD.md`` (Hugging Face's model-card
    layout: YAML front matter + sections; publish it as the README.md beside the weights)."""
    return f"{CARDS_DIR}/{variant}/seed{seed}/MODEL_CARD.md"


# ---- tables (medslip table) ---------------------------------------------------------------------
TABLES_DIR = "results/tables"
"""Folder of every table."""

TABLES = (
    "data_summary",
    "report_labels",
    "label_statistics",
    "zero_shot_classification",
    "zero_shot_grounding",
    "finetune_classification",
    "finetune_segmentation",
    "real_lung_segmentation",
    "disentanglement",
    "ablation",
)
"""Table names (``medslip table NAME`` and one rule each); the first three describe the data and
report stages, the others are built from evaluation metrics files."""


def table_files(name: str) -> dict[str, str]:
    """``{"csv": results/tables/NAME.csv, "md": results/tables/NAME.md}``."""
    return {kind: f"{TABLES_DIR}/{name}.{kind}" for kind in ("csv", "md")}


ABLATION_KEYS = ("variant", "source", "split")
"""Key columns of ``ablation.csv``; every other column is a task's headline value (``{col}``) or
its interval and seed count (``{col}_lo``, ``{col}_hi``, ``{col}_n_seeds``)."""


def headline_columns(columns: list[str]) -> list[str]:
    """The headline value columns of the ablation table: those with ``_lo`` and ``_hi`` siblings
    (table order)."""
    names = set(columns)
    return [
        c
        for c in columns
        if c not in ABLATION_KEYS
        and not c.endswith(("_lo", "_hi", "_n_seeds"))
        and {f"{c}_lo", f"{c}_hi"} <= names
    ]


# ---- DVC metrics (medslip dvc-metrics) ---------------------------------------------------------
METRICS_DIR = "results/metrics"
"""Folder of the DVC metrics and plot data."""

METRICS_FILES = {
    "headline": f"{METRICS_DIR}/headline",
    "data": f"{METRICS_DIR}/data.json",
    "benchmarks": f"{METRICS_DIR}/benchmarks.json",
}
"""The headline folder (``headline/<source>/<task column>.json``, ``{variant: value}``: what
``dvc metrics show`` lists), the dataset counts and the per-rule benchmark figures."""


def roc_points_file(dataset: str) -> str:
    """``results/metrics/roc_{dataset}.csv``: the zero-shot ROC points DVC plots."""
    return f"{METRICS_DIR}/roc_{dataset}.csv"


# ---- figures (medslip figure) -------------------------------------------------------------------
FIGURES_DIR = "results/figures"
"""Folder of every figure."""

FIGURES = (
    "roc",
    "grounding_overlays",
    "label_efficiency",
    "pretraining_curves",
    "ablation",
    "disentanglement",
)
"""Figure kinds (``medslip figure KIND`` and one rule each); ``roc`` is drawn once per zero-shot
dataset, as ``roc_{dataset}``, every other kind once, under its own name."""

FORMATS = ("png", "pdf")
"""Formats of every figure (the PNG is the one named on the command line; the PDF is its twin)."""


def figure_name(kind: str, dataset: str | None = None) -> str:
    """The file stem of a figure: ``roc_{dataset}`` or the kind itself."""
    if kind not in FIGURES:
        raise ValueError(f"unknown figure {kind!r}; known: {', '.join(FIGURES)}")
    if (kind == "roc") != (dataset is not None):
        raise ValueError("a dataset is given for the roc figure and only for it")
    return f"roc_{dataset}" if kind == "roc" else kind


def figure_files(name: str) -> dict[str, str]:
    """``{"png": results/figures/NAME.png, "pdf": results/figures/NAME.pdf}``."""
    return {fmt: f"{FIGURES_DIR}/{name}.{fmt}" for fmt in FORMATS}
