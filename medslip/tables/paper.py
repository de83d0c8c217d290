"""The paper's tables from the evaluation stage's metrics files (:mod:`medslip.tables.collect`).

Every builder takes all metrics files it is given (it keeps the tasks it reads) and the data
source of each dataset, and returns a :class:`Table`: a frame with one row per dataset × variant
(× fraction × class …) and a caption stating protocol, intervals and seeds. Every row names its
source (SynthCXR or real) and split; rows of different sources are never averaged together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from medslip.tables.collect import run_label, source_of, summarise, with_ci, with_weights
from medslip.variants import variant_rank

ZEROSHOT_METRICS = ["auc", "f1", "accuracy", "oracle_f1", "oracle_accuracy"]
FT_CLS_METRICS = ZEROSHOT_METRICS
FT_SEG_METRICS = ["dice", "iou", "dice_nonempty", "iou_nonempty"]
PROBE_METRICS = ["auc", "auc_difference", "auc_difference_mdd"]
REAL_SEG_DATASETS = ("covid_chestxray",)
"""Datasets of the real-data lung segmentation table (when served by real data)."""
INTERVALS = (
    "Intervals: 95 % patient-bootstrap intervals on the test split; with several seeds, value = "
    "mean over seeds and interval = mean of the per-seed bounds (`n_seeds`, `seeds` beside it; "
    "`*_seed_sd` in the CSV is the spread between seeds). `weights`: trained by this workflow, "
    "or a published checkpoint imported as it is (one run, seed 0; trained by its authors on "
    "real MIMIC-CXR, so its rows compare a model of another training set)."
)


@dataclass(frozen=True)
class Table:
    """A built table: ``frame`` (CSV columns), a title and a caption (Markdown)."""

    frame: pd.DataFrame
    title: str
    caption: str
    metrics: list[str]
    """Metric columns shown as ``value [lo, hi]`` in the Markdown twin."""
    footer: tuple[str, ...] = ()
    """Lines under the Markdown table (e.g. the probe's verdicts)."""


def _base(m: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """Identifying columns of a run record."""
    return {
        "source": source_of(m["dataset"], sources, m["_path"]),
        "split": "test",
        "dataset": m["dataset"],
        "variant": m["variant"],
        "run": run_label(m),
        "status": m["status"],
        "note": m.get("reason", ""),
    }


def _bootstrap_text(metrics: list[dict[str, Any]]) -> str:
    """``1000 resamples over patients, seed 0`` from the first metrics file with a protocol."""
    for m in metrics:
        b = m.get("protocol", {}).get("bootstrap")
        if b:
            return f"{b['resamples']} resamples over {b['unit']}s, seed {b['seed']}"
    return "no runs"


def zero_shot_classification(metrics: list[dict[str, Any]], sources: dict[str, str]) -> Table:
    """Dataset × variant × class (``macro`` first): AUC; F1 and accuracy at the validation
    threshold; the paper's test-chosen threshold as ``oracle_*``."""
    runs = []
    for m in (m for m in metrics if m["task"] == "zeroshot"):
        base = _base(m, sources)
        if m["status"] != "ok":
            runs.append(base | {"class": "macro"})
            continue
        macro = {"class": "macro", "n_test": m["images"]["test"]}
        runs.append(base | macro | with_ci(m["macro"], ZEROSHOT_METRICS))
        runs += [
            base
            | {"class": name, "n_test": c["n_test"], "n_test_positive": c["n_test_positive"]}
            | with_ci(c, ZEROSHOT_METRICS)
            | {"threshold": c["threshold"]}
            for name, c in m["classes"].items()
        ]
    frame = summarise(
        runs,
        ["source", "split", "dataset", "variant", "class"],
        ZEROSHOT_METRICS,
        ["threshold", "n_test", "n_test_positive"],
    )
    caption = (
        "Zero-shot classification: score = existence probability of the class entity from the "
        "pathology stream (global_clip: image-prompt similarity); random_init has no zero-shot "
        "head (n/a). AUC is threshold-free; F1 and accuracy use the max-F1 threshold chosen on "
        "the validation split (`threshold`); `oracle_*` use the max-F1 threshold chosen on the "
        "test split (the paper's protocol, optimistic). Macro = mean over classes with a "
        f"defined metric. Bootstrap: {_bootstrap_text(metrics)}. {INTERVALS}"
    )
    return Table(frame, "Zero-shot classification", caption, ZEROSHOT_METRICS)


def _grounding_metrics(metrics: list[dict[str, Any]]) -> list[str]:
    """Metric names of the grounding files: pointing, the τ_val and fixed-τ overlaps, pixel
    AUROC (every macro key with an interval), in first-seen order."""
    names: dict[str, None] = {}
    for m in metrics:
        for truth in m.get("truths", {}).values():
            names |= {k: None for k in truth["macro"] if f"{k}_ci" in truth["macro"]}
    return list(names)


def _uniform_entropy(metrics: list[dict[str, Any]]) -> str:
    """The uniform map's entropy of the grounding runs (one value per token grid)."""
    values = sorted(
        {
            m["protocol"]["uniform_entropy"]
            for m in metrics
            if "uniform_entropy" in m.get("protocol", {})
        }
    )
    return ", ".join(f"{v:.3f}" for v in values) or "n/a"


def zero_shot_grounding(metrics: list[dict[str, Any]], sources: dict[str, str]) -> Table:
    """Dataset × variant × truth (official boxes/masks; exact SynthCXR finding masks) × class
    (``macro`` first): pointing game, overlaps at the validation τ and the fixed τs, pixel
    AUROC."""
    grounding = [m for m in metrics if m["task"] == "grounding"]
    names = _grounding_metrics(grounding)
    runs = []
    for m in grounding:
        base = _base(m, sources)
        if m["status"] != "ok":
            runs.append(base | {"truth": "official", "class": "macro"})
            continue
        for kind, truth in m["truths"].items():
            common = base | {"truth": kind, "tau_val": truth["tau_val"]}
            notes = [  # the run's notes on this truth or on every truth, on its macro row
                n
                for n in m.get("notes", [])
                if n.split(":")[0] not in m["truths"] or n.startswith(f"{kind}:")
            ]
            macro = {"class": "macro", "n_test": truth["n_test"], "note": "; ".join(notes)}
            runs.append(common | macro)
            runs[-1] |= with_ci(truth["macro"], names)
            runs += [
                common | {"class": name, "n_test": c["n_test"]} | with_ci(c, names)
                for name, c in truth["classes"].items()
            ]
    frame = summarise(
        runs,
        ["source", "split", "dataset", "variant", "truth", "class"],
        names,
        ["tau_val", "n_test"],
    )
    protocol = next((m["protocol"] for m in grounding if m["status"] == "ok"), {})
    caption = (
        "Zero-shot grounding on positive test images: map = pathology-decoder cross-attention "
        f"of the class entity, mean over layers (anatomy-weighted use_ws_p: "
        f"{protocol.get('use_ws_p', 'n/a')}; normalisation: "
        f"{protocol.get('normalisation', 'n/a')}; upsampling: {protocol.get('upsample', 'n/a')})"
        "; prediction P = map > τ. `*_tau_val`: τ (`tau_val`) chosen as the max mean Dice over "
        "validation positives; `*_tau_0` and `*_tau_0.01` are the official fixed τ (τ = 0 is "
        "degenerate: P covers nearly the whole image, see `pred_fraction_*`); pointing game and "
        "pixel AUROC are threshold-free. `attention_entropy`: the map's entropy over its tokens "
        f"(nats; a uniform map has log(tokens) = {_uniform_entropy(grounding)}). "
        "Truth `official`: the dataset's boxes or masks; `exact`:"
        " SynthCXR's drawn finding masks. Controls (no model): `control_brightness` (the image "
        "itself) and `control_mean_map` (each class's mean training mask) are floors a map must "
        "beat to show it grounds; `control_oracle` (the truth on the model's token grid) is the "
        "grid's ceiling. global_clip has no maps (n/a); random_init's maps are "
        "the untrained model's attention, an untrained baseline (nearly flat maps whose peak "
        "tends to sit on border tokens, so its pointing game can fall below chance). Empty "
        "`*_tau_val`: see the macro row's note (e.g. no validation positive with ground truth, "
        "so no τ). "
        f"Bootstrap: {_bootstrap_text(grounding)}. {INTERVALS}"
    )
    return Table(frame, "Zero-shot grounding", caption, names)


def _finetune_base(m: dict[str, Any], sources: dict[str, str]) -> dict[str, Any]:
    """Identifying columns of a fine-tuning run (the training fraction in percent)."""
    return _base(m, sources) | {"pct": float(m["pct"])}


def finetune_classification(metrics: list[dict[str, Any]], sources: dict[str, str]) -> Table:
    """Dataset × variant × training fraction × class (``macro`` first): test AUC, F1 and
    accuracy at the validation threshold (and the oracle columns), model chosen on validation."""
    runs = []
    for m in (m for m in metrics if m["task"] == "finetune_cls"):
        base = _finetune_base(m, sources) | {
            "n_train": m["images"]["train"],
            "chosen_epoch": m["chosen_epoch"],
        }
        runs.append(base | {"class": "macro"} | with_ci(m["macro"], FT_CLS_METRICS))
        runs += [
            base
            | {"class": name, "n_test_positive": c["n_test_positive"]}
            | with_ci(c, FT_CLS_METRICS)
            for name, c in m["classes"].items()
        ]
    frame = summarise(
        runs,
        ["source", "split", "dataset", "variant", "pct", "class"],
        FT_CLS_METRICS,
        ["n_train", "chosen_epoch", "n_test_positive"],
    )
    protocol = next((m for m in metrics if m["task"] == "finetune_cls"), {}).get("protocol", {})
    caption = (
        "Fine-tuning classification at the published nested training subsets (`pct` % of the "
        f"training split): {protocol.get('model', 'pretrained trunk + new layers')}. The epoch "
        "is chosen on validation AUC (test never seen); F1 and accuracy at the max-F1 threshold "
        "chosen on validation; `oracle_*` at the threshold chosen on test (the paper's "
        "protocol). `n_seeds` counts pretraining × fine-tuning seeds (`seeds`: pretrain/ft). "
        f"Bootstrap: {_bootstrap_text([m for m in metrics if m['task'] == 'finetune_cls'])}. "
        f"{INTERVALS}"
    )
    return Table(frame, "Fine-tuning classification", caption, FT_CLS_METRICS)


def _segmentation(
    metrics: list[dict[str, Any]], sources: dict[str, str], keep: Callable[[dict], bool]
) -> pd.DataFrame:
    """Dataset × variant × fraction rows of the segmentation runs ``keep`` selects."""
    runs = [
        _finetune_base(m, sources)
        | {
            "n_train": m["images"]["train"],
            "n_test": m["test"]["n_images"],
            "n_test_empty_truth": m["test"]["n_empty_truth"],
            "chosen_epoch": m["chosen_epoch"],
        }
        | with_ci(m["test"], FT_SEG_METRICS)
        | ({"note": m["test"]["undefined"]} if m["test"].get("undefined") else {})
        for m in metrics
        if m["task"] == "finetune_seg" and keep(m)
    ]
    return summarise(
        runs,
        ["source", "split", "dataset", "variant", "pct"],
        FT_SEG_METRICS,
        ["n_train", "n_test", "n_test_empty_truth", "chosen_epoch"],
    )


SEG_CAPTION = (
    "U-Net on the pretrained ResNet-to-layer3 encoder, BCE + soft Dice; the epoch is chosen on "
    "validation mean Dice (test never seen); prediction = sigmoid ≥ 0.5 at the shard "
    "resolution. Dice and IoU per image averaged over every test image (none dropped), with "
    "the official empty convention (empty truth and empty prediction score 1, empty truth with "
    "a non-empty prediction 0); `*_nonempty` average over images whose truth is not empty. "
)


def finetune_segmentation(metrics: list[dict[str, Any]], sources: dict[str, str]) -> Table:
    """Dataset × variant × training fraction: test Dice and IoU (all images; non-empty truth)."""
    frame = _segmentation(metrics, sources, lambda m: True)
    runs = [m for m in metrics if m["task"] == "finetune_seg"]
    caption = (
        f"Fine-tuning segmentation at the published nested training subsets. {SEG_CAPTION}"
        f"Bootstrap: {_bootstrap_text(runs)}. {INTERVALS}"
    )
    return Table(frame, "Fine-tuning segmentation", caption, FT_SEG_METRICS)


def real_lung_segmentation(metrics: list[dict[str, Any]], sources: dict[str, str]) -> Table:
    """The real-data transfer check: lung segmentation of the real COVID-19 collection images,
    fine-tuned from each pretrained variant vs ``random_init``."""

    def keep(m: dict[str, Any]) -> bool:
        real = source_of(m["dataset"], sources, m["_path"]) == "real"
        return m["dataset"] in REAL_SEG_DATASETS and real

    frame = _segmentation(metrics, sources, keep)
    runs = [m for m in metrics if m["task"] == "finetune_seg" and keep(m)]
    caption = (
        "Real-data check: lung masks of the real COVID-19 image collection "
        "(datasets.covid_chestxray), fine-tuned from each model pretrained on SynthCXR, against "
        f"random_init. {SEG_CAPTION}Bootstrap: {_bootstrap_text(runs)}. {INTERVALS}"
        + (
            ""
            if runs
            else " No rows: set datasets.covid_chestxray to a copy of the collection "
            "(finetune.seg_datasets lists covid_chestxray by default)."
        )
    )
    return Table(frame, "Real-data lung segmentation", caption, FT_SEG_METRICS)


PROBE_DIFFERENCE = "own - other"
"""``stream`` of the rows holding a target's paired difference (own stream minus the other)."""


def disentanglement(metrics: list[dict[str, Any]], sources: dict[str, str]) -> Table:
    """Variant × target (presence, landmark) × stream (pathology, anatomy, and the paired
    difference own − other): probe-test macro AUC, and each variant's verdict."""
    probes = [m for m in metrics if m["task"] == "probe"]
    runs, verdicts = [], {}
    for m in probes:
        base = _base(m, sources)
        if m["status"] != "ok":
            runs.append(base | {"target": "presence", "stream": "pathology"})
            continue
        verdicts.setdefault(m["variant"], []).append(m["verdict"])
        for stream, entries in m["table"].items():
            runs += [
                base | {"target": target, "stream": stream} | with_ci(entry, ["auc"])
                for target, entry in entries.items()
            ]
        runs += [
            base
            | {"target": target, "stream": PROBE_DIFFERENCE}
            | with_ci(d, ["auc_difference", "auc_difference_mdd"])
            for target, d in m["differences"].items()
        ]
    frame = summarise(
        runs,
        ["source", "split", "dataset", "variant", "target", "stream"],
        PROBE_METRICS,
    )
    frame["verdict"] = frame["variant"].map(
        lambda v: " | ".join(dict.fromkeys(verdicts.get(v, [])))
    )
    protocol = next((m["protocol"] for m in probes if m["status"] == "ok"), {})
    caption = (
        "Disentanglement probe: on the tokens that SynthCXR test images' exact finding masks "
        "cover, linear probes (L2 logistic regression per target column, C chosen on probe "
        "validation) from each stream's token features to (presence) which finding kind covers "
        "the token and (landmark) at which landmark; macro AUC over the target columns on the "
        "probe-test part of the test split's patients "
        f"({protocol.get('split', 'test split patients')}). Rows `{PROBE_DIFFERENCE}`: the "
        "paired difference of the stream the paper says should win (presence: pathology; "
        "landmark: anatomy) minus the other, with `auc_difference_mdd`, the smallest "
        "difference the probe-test tokens could detect (two-sided 5 % test, 80 % power: 2.8 "
        "bootstrap standard errors). The verdict says per variant whether each stream "
        "is better at its own target (interval of the difference excludes 0). global_clip has "
        "no streams (n/a); random_init is the untrained baseline. Intervals hold the probe "
        f"split and fits fixed. Bootstrap: {_bootstrap_text(probes)}. {INTERVALS}"
    )
    footer = tuple(
        f"- {variant}: {v}"
        for variant in sorted(verdicts, key=variant_rank)
        for v in dict.fromkeys(verdicts[variant])
    )
    return Table(frame, "Disentanglement probe", caption, PROBE_METRICS, ("Verdicts:", *footer))


def _headline(
    frame: pd.DataFrame, column: Callable[[pd.Series], str], metric: str
) -> list[dict[str, Any]]:
    """One long record per row of a table: variant, source, split, the ablation column name,
    value, interval and seeds of ``metric``."""
    return [
        {
            "variant": r["variant"],
            "source": r["source"],
            "split": r["split"],
            "column": column(r),
            "value": r[metric],
            "lo": r[f"{metric}_lo"],
            "hi": r[f"{metric}_hi"],
            "n_seeds": r["n_seeds"],
        }
        for _, r in frame.iterrows()
    ]


def ablation(metrics: list[dict[str, Any]], sources: dict[str, str]) -> Table:
    """One row per variant (and data source): the headline metric of every task as columns
    (``{col}``, ``{col}_lo``, ``{col}_hi``, ``{col}_n_seeds``), from the same summaries as the
    task tables."""
    zs = zero_shot_classification(metrics, sources).frame
    gr = zero_shot_grounding(metrics, sources).frame
    fc = finetune_classification(metrics, sources).frame
    fs = finetune_segmentation(metrics, sources).frame
    pr = disentanglement(metrics, sources).frame
    pr = pr[pr["stream"] == PROBE_DIFFERENCE]
    gr = gr[(gr["class"] == "macro") & (gr["truth"] == "official")]
    records = (
        _headline(zs[zs["class"] == "macro"], lambda r: f"zeroshot_auc_{r['dataset']}", "auc")
        + _headline(gr, lambda r: f"grounding_pointing_{r['dataset']}", "pointing")
        + _headline(gr, lambda r: f"grounding_dice_{r['dataset']}", "dice_tau_val")
        + _headline(
            fc[fc["class"] == "macro"],
            lambda r: f"finetune_auc_{r['dataset']}_{r['pct']:g}pct",
            "auc",
        )
        + _headline(fs, lambda r: f"finetune_dice_{r['dataset']}_{r['pct']:g}pct", "dice")
        + _headline(pr, lambda r: f"probe_{r['target']}_gap", "auc_difference")
    )
    keys = ["variant", "source", "split"]
    columns = list(dict.fromkeys(r["column"] for r in records))
    wide = [f"{c}{s}" for c in columns for s in ("", "_lo", "_hi", "_n_seeds")]
    rows: dict[tuple, dict[str, Any]] = {}
    for r in records:
        row = rows.setdefault(tuple(r[k] for k in keys), {k: r[k] for k in keys})
        c = r["column"]
        row |= {c: r["value"], f"{c}_lo": r["lo"], f"{c}_hi": r["hi"], f"{c}_n_seeds": r["n_seeds"]}
    frame = pd.DataFrame(list(rows.values()), columns=keys + wide)
    frame = frame.sort_values(
        ["source", "variant"], key=lambda s: s.map(variant_rank) if s.name == "variant" else s
    ).reset_index(drop=True)
    frame = with_weights(frame)
    caption = (
        "Ablation: one row per pretrained variant and data source; columns are each task's "
        "headline metric (zero-shot macro AUC; grounding pointing game and Dice at the "
        "validation τ against the official truth; fine-tuning macro AUC and Dice at each "
        "training fraction; probe: own-stream minus other-stream AUC per target). Empty = not "
        "applicable (e.g. random_init has no zero-shot head) or "
        f"not run. Protocols as in the task tables. {INTERVALS}"
    )
    return Table(frame, "Ablation", caption, columns)


BUILDERS: dict[str, Callable[[list[dict[str, Any]], dict[str, str]], Table]] = {
    "zero_shot_classification": zero_shot_classification,
    "zero_shot_grounding": zero_shot_grounding,
    "finetune_classification": finetune_classification,
    "finetune_segmentation": finetune_segmentation,
    "real_lung_segmentation": real_lung_segmentation,
    "disentanglement": disentanglement,
    "ablation": ablation,
}
"""Table name (:data:`medslip.layout.TABLES`) → builder."""
