"""Figures (``medslip figure KIND``): each renders from small synthetic inputs to a PNG and its
PDF twin; NaN intervals, empty tables and untrained runs still render; the overlay sample is
seeded; a missing input is a one-line error (exit 2)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medslip.cli import main
from medslip.commands.figure import _KINDS as KINDS
from medslip.figures.roc import roc_points
from medslip.layout import EVAL_FILES, FIGURES, RUN_FILES, eval_dir, figure_files, figure_name

CLASSES = ["Atelectasis", "Effusion", "Mass"]


def _written(out: Path) -> None:
    png, pdf = out, out.with_suffix(".pdf")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 1000
    assert not [p for p in out.parent.iterdir() if ".tmp" in p.name]  # atomic, nothing left


def _figure(kind: str, out: Path, *args: str) -> int:
    return main(["figure", kind, *args, "--out", str(out)])


# --- zero-shot ROC ------------------------------------------------------------------------------


def _zeroshot_run(root: Path, variant: str, seed: int, rng: np.random.Generator) -> Path:
    run = root / eval_dir("zeroshot", "nih_cxr14", variant, seed)
    run.mkdir(parents=True)
    head = {"task": "zeroshot", "dataset": "nih_cxr14", "variant": variant, "seed": seed}
    if variant == "random_init":
        metrics = head | {"status": "n/a", "reason": "an untrained model has no zero-shot head"}
        pd.DataFrame(columns=["image_id", "split", "label", "score"]).to_parquet(
            run / EVAL_FILES["predictions"]
        )
    else:
        n = 40
        ids = np.repeat([f"img{i:02d}" for i in range(n)], len(CLASSES))
        label = rng.integers(0, 2, len(ids)).astype(float)
        label[::7] = np.nan  # uncertain / unmentioned
        score = np.clip(0.3 * np.nan_to_num(label) + rng.uniform(0, 0.7, len(ids)), 0, 1)
        split = np.where(np.arange(len(ids)) < 30, "val", "test")
        pd.DataFrame(
            {
                "image_id": ids,
                "patient_id": ids,
                "split": split,
                "class": CLASSES * n,
                "entity": "x",
                "label": label,
                "score": score,
            }
        ).to_parquet(run / EVAL_FILES["predictions"])
        metrics = head | {
            "status": "ok",
            "protocol": {
                "score": "existence probability of the class entity",
                "bootstrap": {"resamples": 50},
            },
            "images": {"val": 10, "test": 30},
            "classes": {c: {} for c in CLASSES},
            "macro": {
                "auc": 0.71 + seed / 100,
                "auc_ci": [0.6, 0.8] if seed == 0 else [None, None],
            },
        }
    (run / EVAL_FILES["metrics"]).write_text(json.dumps(metrics))
    return run


@pytest.fixture(scope="module")
def zeroshot_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("zeroshot")
    rng = np.random.default_rng(0)
    runs = [("medslip", 0), ("medslip", 1), ("medklip", 0), ("random_init", 0)]
    return [_zeroshot_run(root, v, s, rng) for v, s in runs]


def test_roc_points_against_a_hand_count():
    fpr, tpr = roc_points(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]))
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    assert np.trapz(tpr, fpr) == pytest.approx(0.75)
    fpr, tpr = roc_points(np.array([1, 0, 1]), np.array([0.5, 0.5, 0.2]))  # a tie moves both
    assert fpr.tolist() == [0, 1, 1] and tpr.tolist() == [0, 0.5, 1]


def test_roc_renders_every_variant_and_seed(zeroshot_runs, tmp_path):
    out = tmp_path / f"{figure_name('roc', 'nih_cxr14')}.png"
    assert _figure("roc", out, "--runs", *map(str, zeroshot_runs)) == 0
    _written(out)


# --- tables -------------------------------------------------------------------------------------


def _interval_columns(metric: str, values: np.ndarray, nan_intervals: bool) -> dict:
    lo = np.full_like(values, np.nan) if nan_intervals else values - 0.05
    hi = np.full_like(values, np.nan) if nan_intervals else values + 0.04
    return {metric: values, f"{metric}_lo": lo, f"{metric}_hi": hi, f"{metric}_seed_sd": 0.01}


def _finetune_tables(root: Path, nan_intervals: bool = False) -> tuple[Path, Path]:
    rows_cls, rows_seg = [], []
    for variant in ("medslip", "random_init"):
        for pct in (1, 10, 100):
            key = {"source": "synthcxr", "split": "test", "variant": variant, "pct": pct}
            for cls in ("macro", "Pneumonia"):
                rows_cls.append(key | {"dataset": "rsna_pneumonia", "class": cls})
            rows_seg.append(key | {"dataset": "siim_acr"})
    cls, seg = pd.DataFrame(rows_cls), pd.DataFrame(rows_seg)
    cls["n_seeds"], cls["seeds"] = 1, "0"
    seg["n_seeds"], seg["seeds"] = 1, "0"
    rng = np.random.default_rng(1)
    for m in ("auc", "f1", "accuracy", "oracle_f1", "oracle_accuracy"):
        cls = cls.assign(**_interval_columns(m, rng.uniform(0.5, 0.9, len(cls)), nan_intervals))
    for m in ("dice", "iou", "dice_nonempty", "iou_nonempty"):
        seg = seg.assign(**_interval_columns(m, rng.uniform(0.1, 0.6, len(seg)), nan_intervals))
    seg.loc[0, "dice"] = np.nan  # a missing cell
    cls.to_csv(root / "finetune_classification.csv", index=False)
    seg.to_csv(root / "finetune_segmentation.csv", index=False)
    return root / "finetune_classification.csv", root / "finetune_segmentation.csv"


def _ablation_table(root: Path, nan_intervals: bool = False) -> Path:
    variants = ["medslip", "medslip_no_icl", "medklip", "global_clip", "random_init"]
    frame = pd.DataFrame({"variant": variants, "source": "synthcxr", "split": "test"})
    rng = np.random.default_rng(2)
    for col in (
        "zeroshot_auc_nih_cxr14",
        "grounding_pointing_rsna_pneumonia",
        "finetune_auc_rsna_pneumonia_1pct",
        "finetune_dice_siim_acr_100pct",
    ):
        values = rng.uniform(0.3, 0.9, len(frame))
        frame = frame.assign(**_interval_columns(col, values, nan_intervals))
        frame = frame.drop(columns=f"{col}_seed_sd").assign(**{f"{col}_n_seeds": 1})
    frame.loc[4, "zeroshot_auc_nih_cxr14"] = np.nan  # not applicable: empty cells
    frame.loc[3, ["grounding_pointing_rsna_pneumonia", "grounding_pointing_rsna_pneumonia_lo"]] = (
        np.nan
    )
    frame.loc[0, "finetune_dice_siim_acr_100pct_lo"] = np.nan
    frame.to_csv(root / "ablation.csv", index=False)
    return root / "ablation.csv"


def _disentanglement_table(root: Path, rows: bool = True) -> Path:
    records = [
        {
            "variant": v,
            "stream": s,
            "target": t,
            "auc": 0.5 + 0.1 * i,
            "auc_lo": 0.45 + 0.1 * i,
            "auc_hi": np.nan if v == "medklip" else 0.55 + 0.1 * i,
            "n_seeds": 1,
        }
        for v in ("medslip", "medklip")
        for i, (s, t) in enumerate(
            [(s, t) for s in ("pathology", "anatomy") for t in ("presence", "landmark")]
        )
        if v == "medslip" or s == "pathology"
    ] + [  # the paired differences (own stream − other) of the two-stream variant
        {"variant": "medslip", "stream": "own - other", "target": t, "n_seeds": 1}
        | {"auc_difference": d, "auc_difference_lo": d - 0.05, "auc_difference_hi": d + 0.05}
        for t, d in (("presence", 0.2), ("landmark", 0.0))
    ]
    frame = pd.DataFrame(records if rows else [])
    frame = frame if rows else pd.DataFrame(columns=["variant", "stream", "target", "auc"])
    frame.to_csv(root / "disentanglement.csv", index=False)
    return root / "disentanglement.csv"


@pytest.mark.parametrize("nan_intervals", [False, True])
def test_table_figures_render_with_and_without_intervals(tmp_path, nan_intervals):
    cls, seg = _finetune_tables(tmp_path, nan_intervals)
    out = tmp_path / "figures" / "label_efficiency.png"
    assert _figure("label_efficiency", out, "--cls", str(cls), "--seg", str(seg)) == 0
    _written(out)
    out = tmp_path / "figures" / "ablation.png"
    assert _figure("ablation", out, "--table", str(_ablation_table(tmp_path, nan_intervals))) == 0
    _written(out)


@pytest.mark.parametrize("rows", [True, False])
def test_disentanglement_renders_rows_or_says_there_are_none(tmp_path, rows):
    out = tmp_path / "disentanglement.png"
    assert (
        _figure("disentanglement", out, "--table", str(_disentanglement_table(tmp_path, rows))) == 0
    )
    _written(out)


def test_probe_verdict_follows_the_interval_of_the_paired_difference():
    from medslip.figures.disentanglement import verdict

    lines = verdict({"presence": (0.2, 0.1, 0.3, 0.08), "landmark": (0.1, -0.05, 0.25, 0.2)})
    assert lines[0] == "pathology better on presence"
    assert lines[1] == "(Δ 0.20 [0.10, 0.30], detectable 0.08)"
    assert lines[2] == "anatomy not distinguishable on landmark"
    assert verdict({"landmark": (-0.2, -0.3, -0.1)}) == [
        "pathology on presence: n/a",
        "anatomy worse on landmark",
        "(Δ -0.20 [-0.30, -0.10])",
    ]


def test_same_inputs_give_the_same_bytes(tmp_path):
    table = _ablation_table(tmp_path)
    first, second = tmp_path / "a" / "ablation.png", tmp_path / "b" / "ablation.png"
    assert _figure("ablation", first, "--table", str(table)) == 0
    assert _figure("ablation", second, "--table", str(table)) == 0
    for suffix in (".png", ".pdf"):
        assert first.with_suffix(suffix).read_bytes() == second.with_suffix(suffix).read_bytes()


# --- pretraining curves -------------------------------------------------------------------------


def _pretrain_run(root: Path, variant: str, seed: int, terms: list[str]) -> Path:
    run = root / "models" / variant / f"seed{seed}"
    (run / "metrics").mkdir(parents=True)
    trained = variant != "random_init"
    meta = {
        "variant": variant,
        "seed": seed,
        "epochs_trained": 3 if trained else 0,
        "train": {
            "alpha": 1.0,
            "beta": 1.0,
            "lr": 1e-3,
            "min_lr": 1e-5,
            "warmup_lr": 1e-5,
            "warmup_steps": 5,
            "batch_size": 4,
            "epochs": 3,
        },
    }
    (run / RUN_FILES["meta"]).write_text(json.dumps(meta))
    if not trained:
        return run
    rng = np.random.default_rng(seed)
    steps = pd.DataFrame({"epoch": np.repeat([1, 2, 3], 10), "step": np.arange(1, 31)})
    steps["lr"] = np.r_[np.linspace(1e-5, 1e-3, 10), np.full(10, 5e-4), np.full(10, 1e-4)]
    steps["img_per_s"] = 100.0
    for term in terms:
        steps[term] = np.exp(-steps["step"] / 20) + rng.uniform(0, 0.1, 30)
    steps.to_csv(run / RUN_FILES["steps"], index=False)
    means = steps.groupby("epoch").mean().drop(columns="step").reset_index()
    epochs = means[["epoch", "lr"]].copy()
    for term in [*terms, "img_per_s"]:
        epochs[f"train_{term}"] = means[term]
    for term in terms:
        epochs[f"val_{term}"] = means[term] * 1.1
    epochs.to_csv(run / RUN_FILES["epochs"], index=False)
    return run


def test_pretraining_curves_skip_the_untrained_run(tmp_path):
    medslip_terms = ["exist_p", "exist_a", "protocl_p", "protocl_a", "icl", "total"]
    runs = [
        _pretrain_run(tmp_path, "medslip", 0, medslip_terms),
        _pretrain_run(tmp_path, "medslip", 1, medslip_terms),
        _pretrain_run(tmp_path, "global_clip", 0, ["clip", "total"]),
        _pretrain_run(tmp_path, "random_init", 0, []),
    ]
    out = tmp_path / "pretraining_curves.png"
    assert _figure("pretraining_curves", out, "--runs", *map(str, runs)) == 0
    _written(out)


def test_trained_run_without_its_log_is_an_error(tmp_path, caplog):
    run = _pretrain_run(tmp_path, "medklip", 0, ["exist_p", "position", "total"])
    (run / RUN_FILES["steps"]).unlink()
    assert _figure("pretraining_curves", tmp_path / "x.png", "--runs", str(run)) == 2
    assert f"{run / RUN_FILES['steps']}: no such input file" in caplog.text


# --- errors -------------------------------------------------------------------------------------


def test_missing_input_is_one_line_naming_it(tmp_path, caplog, zeroshot_runs):
    missing = tmp_path / "tables" / "ablation.csv"
    with caplog.at_level(logging.ERROR, logger="medslip"):
        assert _figure("ablation", tmp_path / "ablation.png", "--table", str(missing)) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [f"{missing}: no such input file"]
    assert not (tmp_path / "ablation.png").exists()
    caplog.clear()
    gone = tmp_path / "gone"
    args = ["--runs", str(zeroshot_runs[0]), str(gone)]
    assert _figure("roc", tmp_path / "roc_x.png", *args) == 2
    assert f"{gone / EVAL_FILES['predictions']}: no such input file" in caplog.text


def test_out_must_be_a_png(tmp_path, caplog):
    table = _ablation_table(tmp_path)
    assert _figure("ablation", tmp_path / "ablation.pdf", "--table", str(table)) == 2
    assert "--out must name the PNG" in caplog.text


def test_names_shared_with_the_rules():
    assert figure_files(figure_name("roc", "siim_acr")) == {
        "png": "results/figures/roc_siim_acr.png",
        "pdf": "results/figures/roc_siim_acr.pdf",
    }
    assert figure_name("ablation") == "ablation" and "roc" in FIGURES
    assert tuple(KINDS) == FIGURES  # one subcommand per figure kind
    with pytest.raises(ValueError):
        figure_name("roc")


# --- grounding overlays -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grounding_work(tmp_path_factory) -> Path:
    from medslip.model.text_books import save_books
    from tests.test_evaluate_command import _books, _run_dir, _write_data

    root = tmp_path_factory.mktemp("overlays")
    _write_data(root)
    save_books(_books(), root / "books.safetensors")
    for variant in ("medslip", "medklip"):
        _run_dir(root, variant)
    metrics = {
        "status": "ok",
        "protocol": {
            "use_ws_p": False,
            "normalisation": "per image and class",
            "tau_val": "max mean Dice over validation positives, grid k/100",
        },
        "truths": {"official": {"tau_val": 0.6}},
    }
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root


def _overlay_config(count: int, seed: int) -> dict:
    from medslip.config import validate_config

    return validate_config(
        {"evaluate": {"batch_size": 4}, "figures": {"overlay_count": count, "overlay_seed": seed}}
    )


def test_overlay_sample_is_seeded(grounding_work):
    from medslip.evaluate.inputs import load_eval_set
    from medslip.evaluate.truth import official_truth
    from medslip.figures.overlays import overlay_sample, positive_test_pairs
    from medslip.settings import EvalSettings

    settings = EvalSettings.from_config(_overlay_config(2, 5), ("rsna_pneumonia",))
    data = load_eval_set(grounding_work / "data", "rsna_pneumonia", settings)
    pairs = positive_test_pairs(data, official_truth(data))
    assert len(pairs) == 3 and set(data.frame["split"].iloc[[r for r, _ in pairs]]) == {"test"}

    def ids(seed: int) -> list[str]:
        return [data.frame["image_id"].iloc[r] for r, _ in overlay_sample(pairs, 2, seed)]

    assert ids(5) == ids(5) and len(set(ids(5))) == 2
    assert {tuple(ids(s)) for s in range(20)} == {  # every 2-subset, in the pairs' order
        ("img04", "img06"),
        ("img04", "img08"),
        ("img06", "img08"),
    }
    assert overlay_sample(pairs, 10, 5) == pairs


@pytest.mark.parametrize("variant", ["medslip", "medklip"])
def test_grounding_overlays_render(grounding_work, tmp_path, variant):
    out = tmp_path / "grounding_overlays.png"
    args = [
        "--config",
        json.dumps({"evaluate": {"batch_size": 4}, "figures": {"overlay_count": 2}}),
        "--run-dir",
        str(grounding_work / "models" / variant / "seed0"),
        "--books",
        str(grounding_work / "books.safetensors"),
        "--data",
        str(grounding_work / "data"),
        "--dataset",
        "rsna_pneumonia",
        "--metrics",
        str(grounding_work / "metrics.json"),
    ]
    assert _figure("grounding_overlays", out, *args) == 0
    _written(out)
