"""Results tables from evaluation metrics files: seed summaries, n/a rows, sources kept apart,
the Markdown twin, the ablation's headline columns, and the CLI."""

import json
import math

import pandas as pd
import pytest

from medslip.cli import main
from medslip.errors import MedslipError
from medslip.tables.collect import read_metrics
from medslip.tables.output import markdown
from medslip.tables.paper import BUILDERS, ablation, zero_shot_classification

BOOT = {"bootstrap": {"unit": "patient", "resamples": 200, "seed": 0}}
SOURCES = {"nih_cxr14": "SynthCXR", "rsna_pneumonia": "SynthCXR", "covid_chestxray": "real"}


def _entry(value, half=0.05, metrics=("auc", "f1", "accuracy", "oracle_f1", "oracle_accuracy")):
    out = {}
    for m in metrics:
        out |= {m: value, f"{m}_ci": [value - half, value + half]}
    return out


def _zeroshot(variant, seed, auc, dataset="nih_cxr14"):
    return {
        "task": "zeroshot",
        "dataset": dataset,
        "variant": variant,
        "seed": seed,
        "status": "ok",
        "protocol": BOOT,
        "images": {"val": 10, "test": 40},
        "macro": _entry(auc),
        "classes": {
            "Atelectasis": {"n_test": 40, "n_test_positive": 7, "threshold": 0.4} | _entry(auc),
        },
        "_path": f"{variant}/seed{seed}/metrics.json",
    }


def _na(variant="random_init", task="zeroshot", dataset="nih_cxr14"):
    return {
        "task": task,
        "dataset": dataset,
        "variant": variant,
        "seed": 0,
        "status": "n/a",
        "reason": "no zero-shot head",
        "_path": "x/metrics.json",
    }


def _seg(variant, seed, dice, dataset="covid_chestxray", pct=100):
    metrics = ("dice", "iou", "dice_nonempty", "iou_nonempty")
    return {
        "task": "finetune_seg",
        "dataset": dataset,
        "variant": variant,
        "seed": 0,
        "ft_seed": seed,
        "pct": pct,
        "status": "ok",
        "protocol": BOOT,
        "images": {"train": 90, "val": 20, "test": 40},
        "chosen_epoch": 3,
        "test": {"n_images": 40, "n_empty_truth": 0} | _entry(dice, metrics=metrics),
        "_path": f"{variant}/ft{seed}/metrics.json",
    }


def test_seeds_are_summarised_with_their_count_and_spread():
    runs = [_zeroshot("medslip", 0, 0.6), _zeroshot("medslip", 1, 0.8)]
    frame = zero_shot_classification(runs, SOURCES).frame
    macro = frame[frame["class"] == "macro"].iloc[0]
    assert macro["auc"] == pytest.approx(0.7)
    assert (macro["auc_lo"], macro["auc_hi"]) == pytest.approx((0.65, 0.75))
    assert macro["n_seeds"] == 2 and macro["seeds"] == "0 1"
    assert macro["auc_seed_sd"] == pytest.approx(math.sqrt(0.02))
    assert (macro["source"], macro["split"]) == ("SynthCXR", "test")


def test_a_model_without_a_head_is_marked_na_not_faked():
    frame = zero_shot_classification([_zeroshot("medslip", 0, 0.7), _na()], SOURCES).frame
    row = frame[frame["variant"] == "random_init"].iloc[0]
    assert row["status"] == "n/a" and row["n_seeds"] == 0
    assert math.isnan(row["auc"]) and "no zero-shot head" in row["note"]
    # Variants in the paper's order, whatever order the files came in.
    assert list(dict.fromkeys(frame["variant"])) == ["medslip", "random_init"]


def test_real_and_synthetic_rows_stay_apart_and_the_real_table_keeps_only_real_lungs():
    runs = [_seg("medslip", 0, 0.8), _seg("medslip", 0, 0.4, dataset="siim_acr")]
    sources = SOURCES | {"siim_acr": "SynthCXR"}
    seg = BUILDERS["finetune_segmentation"](runs, sources).frame
    assert sorted(zip(seg["dataset"], seg["source"], strict=True)) == [
        ("covid_chestxray", "real"),
        ("siim_acr", "SynthCXR"),
    ]
    real = BUILDERS["real_lung_segmentation"](runs, sources).frame
    assert real["dataset"].tolist() == ["covid_chestxray"] and real["dice"].tolist() == [0.8]
    table = ablation(runs, sources).frame
    assert sorted(zip(table["variant"], table["source"], strict=True)) == [
        ("medslip", "SynthCXR"),
        ("medslip", "real"),
    ]
    real_row = table[table["source"] == "real"].iloc[0]
    assert real_row["finetune_dice_covid_chestxray_100pct"] == 0.8
    assert pd.isna(real_row["finetune_dice_siim_acr_100pct"])


def test_a_dataset_without_a_source_is_an_error_naming_the_file():
    with pytest.raises(MedslipError, match="medslip/seed0/metrics.json.*no data source"):
        zero_shot_classification([_zeroshot("medslip", 0, 0.7)], {"rsna_pneumonia": "real"})


def test_markdown_shows_value_interval_and_seeds():
    table = ablation([_zeroshot("medslip", 0, 0.7), _zeroshot("medklip", 0, 0.6), _na()], SOURCES)
    text = markdown(table)
    here = "trained by this workflow"
    assert f"| medslip | {here} | SynthCXR | test | 0.700 [0.650, 0.750] (n=1) |" in text
    assert f"| random_init | {here} | SynthCXR | test |" in text
    assert table.frame.columns[:5].tolist() == [
        "variant",
        "weights",
        "source",
        "split",
        "zeroshot_auc_nih_cxr14",
    ]


def test_every_row_says_where_its_weights_come_from():
    runs = [_zeroshot("medslip", 0, 0.7), _zeroshot("medslip_official", 0, 0.8)]
    for table in (zero_shot_classification(runs, SOURCES), ablation(runs, SOURCES)):
        weights = dict(zip(table.frame["variant"], table.frame["weights"], strict=False))
        assert weights["medslip"] == "trained by this workflow"
        assert weights["medslip_official"].startswith("published: Shef-AIRE/MeDSLIP release")
        assert "published: Shef-AIRE/MeDSLIP" in markdown(table)


def test_an_empty_table_still_has_its_columns_and_says_so():
    table = BUILDERS["real_lung_segmentation"]([], SOURCES)
    assert "dice_lo" in table.frame.columns and table.frame.empty
    assert "(no rows)" in markdown(table) and "datasets.covid_chestxray" in table.caption


def test_cli_writes_csv_and_markdown(tmp_path):
    paths = []
    for i, run in enumerate([_zeroshot("medslip", 0, 0.7), _na()]):
        path = tmp_path / f"m{i}.json"
        path.write_text(json.dumps({k: v for k, v in run.items() if k != "_path"}))
        paths.append(str(path))
    csv, md = tmp_path / "t" / "zs.csv", tmp_path / "t" / "zs.md"
    argv = ["table", "zero_shot_classification", "--sources", json.dumps(SOURCES)]
    assert main(argv + ["--csv", str(csv), "--md", str(md), "--metrics", *paths]) == 0
    assert pd.read_csv(csv)["variant"].tolist() == ["medslip", "medslip", "random_init"]
    assert md.read_text().startswith("# Zero-shot classification")


def test_cli_names_a_broken_metrics_file(tmp_path, caplog):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    argv = ["table", "ablation", "--sources", "{}", "--csv", str(tmp_path / "a.csv")]
    assert main(argv + ["--md", str(tmp_path / "a.md"), "--metrics", str(bad)]) == 2
    assert str(bad) in caplog.text and not (tmp_path / "a.csv").exists()
    with pytest.raises(MedslipError, match="missing"):
        bad.write_text("{}")
        read_metrics([bad])


def _probe(variant, presence_gap):
    entry = lambda auc: {"auc": auc, "auc_ci": [auc - 0.1, auc + 0.1]}  # noqa: E731
    diff = lambda d: {"auc_difference": d, "auc_difference_ci": [d - 0.05, d + 0.05]}  # noqa: E731
    return {
        "task": "probe",
        "dataset": "nih_cxr14",
        "variant": variant,
        "seed": 0,
        "status": "ok",
        "protocol": BOOT,
        "table": {
            "pathology": {"presence": entry(0.9), "landmark": entry(0.6)},
            "anatomy": {"presence": entry(0.9 - presence_gap), "landmark": entry(0.8)},
        },
        "differences": {"presence": diff(presence_gap), "landmark": diff(0.2)},
        "verdict": f"{variant}: pathology better at presence",
        "_path": f"{variant}/probe/metrics.json",
    }


def test_probe_table_has_both_streams_the_paired_difference_and_the_verdict():
    table = BUILDERS["disentanglement"](
        [_probe("medslip", 0.3), _na("global_clip", "probe")], SOURCES
    )
    frame = table.frame
    mine = frame[frame["variant"] == "medslip"].set_index(["target", "stream"])
    assert mine.loc[("presence", "anatomy"), "auc"] == pytest.approx(0.6)
    assert mine.loc[("presence", "own - other"), "auc_difference"] == pytest.approx(0.3)
    assert mine["verdict"].iloc[0] == "medslip: pathology better at presence"
    assert frame[frame["variant"] == "global_clip"]["status"].tolist() == ["n/a"]
    row = ablation([_probe("medslip", 0.3)], SOURCES).frame.iloc[0]
    assert row["probe_presence_gap"] == pytest.approx(0.3)
    assert row["probe_landmark_gap_lo"] == pytest.approx(0.15)


def _grounding(tau_val):
    metrics = ("pointing", "dice_tau_val", "pixel_auroc")
    truth = {"tau_val": tau_val, "n_val": 0, "n_test": 30, "macro": _entry(0.4, metrics=metrics)}
    truth["classes"] = {"Effusion": {"n_test": 30} | _entry(0.4, metrics=metrics)}
    return {
        "task": "grounding",
        "dataset": "nih_cxr14",
        "variant": "medslip",
        "seed": 0,
        "status": "ok",
        "protocol": BOOT | {"use_ws_p": False, "normalisation": "image", "upsample": "bilinear"},
        "truths": {"official": truth, "exact": {**truth, "tau_val": 0.3}},
        "notes": [
            "official: no validation positive with ground truth, so no τ is chosen",
            "τ = 0 is degenerate: P covers 100.0% of the image",
        ],
        "_path": "medslip/seed0/metrics.json",
    }


def test_grounding_rows_say_why_a_tau_is_missing():
    frame = BUILDERS["zero_shot_grounding"]([_grounding(None)], SOURCES).frame
    notes = frame.set_index(["truth", "class"])["note"]
    assert "no validation positive" in notes["official", "macro"]
    assert "no validation positive" not in notes["exact", "macro"]  # another truth's τ exists
    assert "τ = 0 is degenerate" in notes["exact", "macro"]
    assert notes["official", "Effusion"] == ""  # said once per run and truth
