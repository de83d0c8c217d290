"""The model card of one run (``medslip model-card``), in Hugging Face's layout: YAML front
matter (license, tags, datasets, a ``model-index`` of the results) and sections (model details,
training data, evaluation, intended use, limitations, how to use, provenance).

Every number comes from a file: the run's ``model.json``, the metrics files of its evaluations
(:mod:`medslip.tables.collect`), the data stage's ``split_counts.json`` and ``splits.csv`` (its
sha256) of each dataset, and the real-data lung segmentation table; the prose around them is
fixed text chosen by where the weights come from (SynthCXR, real data, a published checkpoint).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from medslip.errors import MedslipError
from medslip.hashing import sha256_file, sha256_of
from medslip.layout import RUN_FILES, table_files
from medslip.tables.collect import read_metrics, with_ci
from medslip.tables.output import cell
from medslip.variants import VARIANTS
from medslip.variants import variant as get_variant

TASKS = {
    "zeroshot": ("zero-shot-image-classification", "Zero-shot classification"),
    "grounding": ("zero-shot-grounding", "Zero-shot grounding"),
    "probe": ("feature-probing", "Disentanglement probe"),
    "finetune_cls": ("image-classification", "Fine-tuning classification"),
    "finetune_seg": ("image-segmentation", "Fine-tuning segmentation"),
}
"""Task level of results/eval -> (model-index task type, name)."""
REAL_TABLE = table_files("real_lung_segmentation")["csv"]
BASELINE = next(v.name for v in VARIANTS.values() if not v.trained)
"""The never-trained reference of the real-data check (the registry's untrained variant)."""


@dataclass(frozen=True)
class Row:
    """One result: task, dataset, metric and its value with the 95 % interval."""

    task: str
    dataset: str
    key: str
    metric: str
    value: float
    lo: float
    hi: float
    n: str


@dataclass(frozen=True)
class Dataset:
    """A dataset of the run: its data source, split counts and the sha256 of ``splits.csv`` (of
    its bytes, as ``sha256sum``; ``recorded`` is the name-and-bytes hash that model.json keeps,
    :func:`~medslip.hashing.sha256_of`)."""

    name: str
    source: str
    counts: dict[str, Any]
    splits_sha256: str
    recorded: str


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not a readable JSON file ({exc})") from None


def read_dataset(data_dir: Path, sources: dict[str, str]) -> Dataset:
    """The :class:`Dataset` of ``results/data/{name}``."""
    splits = data_dir / "splits.csv"
    if not splits.is_file():
        raise MedslipError(f"{splits}: missing (the published split of {data_dir.name})")
    return Dataset(
        data_dir.name,
        sources.get(data_dir.name, "?"),
        _json(data_dir / "split_counts.json"),
        sha256_file(splits),
        sha256_of(splits),
    )


def _rows(m: dict[str, Any]) -> Iterator[Row]:
    """The headline results of one metrics file (nothing for an n/a one)."""
    task, dataset = m["task"], m["dataset"]

    def rows(entry: dict[str, Any], names: dict[str, str], n: str) -> Iterator[Row]:
        values = with_ci(entry, list(names))
        for key, label in names.items():
            value = values[key]
            if math.isfinite(value):
                lo, hi = values[f"{key}_lo"], values[f"{key}_hi"]
                yield Row(task, dataset, key, label, value, lo, hi, n)

    if task == "zeroshot":
        n = f"{m['images']['test']} test images"
        names = {"auc": "macro AUC", "f1": "macro F1 (val threshold)", "accuracy": "macro accuracy"}
        yield from rows(m["macro"], names, n)
    elif task == "grounding":
        for kind, truth in m["truths"].items():
            names = {
                "pointing": f"pointing game ({kind} truth)",
                "dice_tau_val": f"Dice at validation τ ({kind} truth)",
                "pixel_auroc": f"pixel AUROC ({kind} truth)",
            }
            yield from rows(truth["macro"], names, f"{truth['n_test']} positive test pairs")
    elif task == "probe":
        for target, d in m["differences"].items():
            label = f"{target}: {d['own']} − {d['other']} stream AUC"
            yield from rows(d, {"auc_difference": label}, "probe-test tokens")
    elif task in ("finetune_cls", "finetune_seg"):
        pct = float(m["pct"])  # the frac{pct} level: "1", "100"
        n = f"{m['images']['train']} training images ({pct:g} %), ft seed {m['ft_seed']}"
        if task == "finetune_cls":
            yield from rows(m["macro"], {"auc": f"macro AUC, {pct:g} % labels"}, n)
        else:
            yield from rows(m["test"], {"dice": f"Dice, {pct:g} % labels"}, n)


def _front_matter(
    meta: dict[str, Any], rows: list[Row], datasets: list[str], license_: str, synthetic: bool
) -> str:
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        metric = {"type": r.key, "value": round(r.value, 4), "name": r.metric}
        results.setdefault((r.task, r.dataset), []).append(metric)
    header = {
        "library_name": "medslip",
        "license": license_,
        "tags": list(
            dict.fromkeys(
                ["chest-x-ray", "vision-language", "medslip", get_variant(meta["variant"]).family]
                + (["synthetic-data"] if synthetic else [])
            )
        ),
        "datasets": datasets,
        "pipeline_tag": "zero-shot-image-classification",
        "model-index": [
            {
                "name": f"{meta['variant']}-seed{meta['seed']}",
                "results": [
                    {
                        "task": {"type": TASKS[task][0], "name": TASKS[task][1]},
                        "dataset": {"type": dataset, "name": dataset, "split": "test"},
                        "metrics": metrics,
                    }
                    for (task, dataset), metrics in results.items()
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n"


def _real_check(variant: str, table: Path | None) -> str:
    """The real-data lung segmentation of this variant against random init, from the table."""
    frame = pd.read_csv(table) if table is not None and table.is_file() else pd.DataFrame()
    mine = frame[frame["variant"] == variant] if "variant" in frame else frame
    if mine.empty or "dice" not in mine:
        return (
            f"This workflow ran no real-data check of this model (`{REAL_TABLE}` has no row of "
            "it: set `datasets.covid_chestxray` and fine-tune it for segmentation)."
        )
    pct = mine["pct"].max()
    at = frame[frame["pct"] == pct].set_index("variant")
    line = (
        f"Real-data check (`{REAL_TABLE}`): lung masks of the real COVID-19 image collection, "
        f"fine-tuned from this model with {pct:g} % of the labels: test Dice "
        f"{cell(*at.loc[variant, ['dice', 'dice_lo', 'dice_hi']])}"
    )
    if BASELINE in at.index and variant != BASELINE:
        baseline = cell(*at.loc[BASELINE, ["dice", "dice_lo", "dice_hi"]])
        line += f", against {baseline} from the random initialisation"
    return line + "."


def _training_data(meta: dict[str, Any], pretrain: Dataset | None) -> list[str]:
    entry = get_variant(meta["variant"])
    if entry.imported:
        imported = meta["imported"]
        return [
            f"Not trained by this workflow: the authors' published checkpoint ({entry.source}), "
            "trained by them on MIMIC-CXR with their own split files and report labels "
            f"(saved after epoch {imported.get('epoch')}). Imported unchanged from "
            f"`{imported['file']}` (sha256 `{imported['sha256']}`)."
        ]
    if not entry.trained:
        return ["Never trained: the seeded random initialisation of the architecture."]
    if pretrain is None:
        raise MedslipError("a trained run's card needs --pretrain-data (results/data/…)")
    c = pretrain.counts
    recorded = meta.get("inputs", {}).get("splits")
    same = (
        ""
        if recorded in (None, pretrain.recorded)
        else " (not the split the run recorded in model.json: rerun it)"
    )
    return [
        f"Pretraining corpus: `{pretrain.name}` served by **{pretrain.source}**"
        + (
            " (synthetic images and reports written in the official layout)"
            if pretrain.source == "SynthCXR"
            else ""
        )
        + f": {c['train']['images']} training images of {c['train']['patients']} patients, "
        f"{c['val']['images']} validation images of {c['val']['patients']} patients "
        "(validation loss per epoch only).",
        f"Split file `results/data/{pretrain.name}/splits.csv`: sha256 "
        f"`{pretrain.splits_sha256}`{same}.",
        f"Label matrix sha256 `{meta.get('inputs', {}).get('label_matrix', 'n/a')}`; "
        f"{meta.get('epochs_trained')} epochs.",
    ]


def _details(meta: dict[str, Any], run_dir: Path) -> list[str]:
    entry = get_variant(meta["variant"])
    model = meta["model"]
    preset = meta.get("preset") or meta.get("architecture", {}).get("preset", "?")
    books = meta.get("text_books", {})
    lines = [
        f"- **Variant**: `{entry.name}`, {entry.description} (family `{entry.family}`).",
        f"- **Weights**: {entry.weights}; `model.safetensors` sha256 "
        f"`{sha256_file(run_dir / RUN_FILES['weights'])}`.",
        f"- **Preset**: `{preset}`: {model['image_size']} px input, ResNet trunk to layer3 "
        f"(blocks {list(model['trunk_layers'])}, width {model['trunk_width']}), d_model "
        f"{model['d_model']}, {model['n_layers']} decoder layers, {model['n_heads']} heads, "
        f"init N(0, {model['init_std']}), decoder memory "
        f"{'layer-normalised per token' if model['memory_norm'] else 'as the official code'}, "
        f"{'sine positions on the keys' if model['positions'] == 'sine' else 'no positions'}.",
        f"- **Text side**: {books.get('encoder', '?')}, {books.get('pooling', '?')} pooling, "
        f"books sha256 `{books.get('books_sha256', '?')}`.",
        f"- **Seeds**: master seed {meta.get('master_seed', 'n/a')}, run seed {meta['seed']}.",
        f"- **Code**: medslip, git commit `{meta.get('git_commit', 'unknown')}`.",
    ]
    if entry.imported:
        arch = meta["architecture"]
        lines.append(
            f"- **Import check**: architecture matches presets.{arch['preset']} "
            f"(from the tensor shapes and the checkpoint's config); "
            f"{meta['load_report']['loaded_tensors']} tensors loaded, none missing or unexpected."
        )
    return lines


def _limitations(meta: dict[str, Any], pretrain: Dataset | None, real: str) -> list[str]:
    entry = get_variant(meta["variant"])
    lines = [
        "- **Not a medical device.** Not validated for any clinical use; never use it to "
        "diagnose, triage or treat a patient."
    ]
    if entry.imported:
        lines.append(
            "- Published weights trained by their authors on MIMIC-CXR; this workflow only "
            "evaluates them. Their terms of use are those of the source; its results here are "
            "on the datasets named above, not the paper's test sets unless those were given."
        )
    elif not entry.trained:
        lines.append(
            "- Never trained: the reference the trained variants are compared with, not a model "
            f"to use. {real}"
        )
    elif pretrain is not None and pretrain.source == "SynthCXR":
        lines.append(
            "- **Trained on SynthCXR**, a synthetic chest X-ray generator: these weights do not "
            "transfer to real images, and their numbers above are measured on synthetic test "
            "images. " + real
        )
    else:
        lines.append(
            f"- Trained on real data (`{pretrain.name if pretrain else '?'}`) under its data use "
            f"agreement; the weights carry its terms. {real}"
        )
    if meta.get("preset") not in (None, "paper"):
        lines.append(
            f"- Preset `{meta['preset']}`: a model far smaller than the paper's, sized for the "
            "default run on a laptop; its numbers say nothing about the published method."
        )
    lines.append(
        "- One run (one pretraining seed): the intervals are test-set uncertainty only; the "
        "spread between seeds is in the tables when `pretrain.seeds` lists several."
    )
    return lines


def model_card(
    run_dir: Path,
    metrics_paths: list[Path],
    sources: dict[str, str],
    data_dirs: list[Path],
    pretrain_data: Path | None,
    real_table: Path | None,
) -> str:
    """The MODEL_CARD.md text of the run in ``run_dir`` (see module docstring)."""
    meta = _json(run_dir / RUN_FILES["meta"])
    entry = get_variant(meta["variant"])
    metrics = read_metrics(metrics_paths)
    foreign = [
        m["_path"] for m in metrics if (m["variant"], m["seed"]) != (entry.name, meta["seed"])
    ]
    if foreign:
        raise MedslipError(f"{foreign[0]}: metrics of another run than {run_dir}")
    datasets = {d.name: read_dataset(d, sources) for d in data_dirs}
    pretrain = read_dataset(pretrain_data, sources) if pretrain_data is not None else None
    rows = [r for m in metrics if m["status"] == "ok" for r in _rows(m)]
    synthetic = pretrain is not None and pretrain.source == "SynthCXR" and not entry.imported
    license_ = "mit" if synthetic or not entry.trained else "other"
    used = sorted({m["dataset"] for m in metrics})
    title = f"{entry.name} (seed {meta['seed']})"
    lines = [
        _front_matter(meta, rows, used, license_, synthetic),
        f"# Model card: {title}",
        "",
        f"{entry.description}; {entry.weights}. A model of the MeDSLIP reproducibility pipeline "
        "(MeDSLIP: Medical Dual-Stream Language-Image Pre-training, arXiv 2403.10635).",
        "",
        "## Model details",
        "",
        *_details(meta, run_dir),
        "",
        "## Training data",
        "",
        *(f"- {line}" for line in _training_data(meta, pretrain)),
        "",
        "## Evaluation",
        "",
        "Test splits of the published `splits.csv` of each dataset; 95 % patient-bootstrap "
        "intervals; thresholds and τ chosen on validation (protocols in the tables' captions).",
        "",
        "| dataset | source | images (val / test) | splits.csv sha256 |",
        "|---|---|---|---|",
        *(
            f"| {name} | {d.source} | {d.counts['val']['images']} / {d.counts['test']['images']}"
            f" | `{d.splits_sha256[:16]}…` |"
            for name, d in datasets.items()
            if name in used
        ),
        "",
        "| task | dataset | metric | value [95 % interval] | n |",
        "|---|---|---|---|---|",
        *(
            f"| {TASKS[r.task][1]} | {r.dataset} | {r.metric} | {cell(r.value, r.lo, r.hi)} "
            f"| {r.n} |"
            for r in rows
        ),
        *(
            f"| {TASKS[m['task']][1]} | {m['dataset']} | n/a | {m.get('reason', '')} | |"
            for m in metrics
            if m["status"] != "ok"
        ),
        "",
        "## Intended use",
        "",
        "Research: reproducing and checking MeDSLIP's results, comparing variants and seeds, and "
        "inspecting zero-shot finding probabilities and grounding maps of research images "
        "(`medslip predict`).",
        "",
        "## Limitations",
        "",
        *_limitations(meta, pretrain, _real_check(entry.name, real_table)),
        "",
        "## How to use",
        "",
        "```python",
        "import medslip",
        f'model = medslip.load_pretrained("{run_dir.as_posix()}")',
        'table = model.predict(["chest_xray.png"])  # probabilities of the 75 findings',
        "```",
        "",
        "## Provenance",
        "",
        f"- Weights and description: `{run_dir.as_posix()}/` (`model.json`).",
        *(f"- Metrics: `{m['_path']}`" for m in metrics),
        "",
    ]
    return "\n".join(lines)
