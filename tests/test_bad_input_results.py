"""Bad input at the evaluation, table and figure boundaries, and at run time (issue 20):
segmentation without a positive test mask, figures whose input is broken, device and output
flags, the offline environment and the log of a figure."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from medslip.cli import main
from medslip.finetune.seg import UNDEFINED, overlap_summary
from medslip.layout import RUN_FILES
from medslip.tables.dvc_metrics import headline_columns
from medslip.tables.output import markdown
from medslip.tables.paper import finetune_segmentation
from tests._cli import fails as _fails
from tests.test_figures import _ablation_table, _pretrain_run
from tests.test_finetune_units import tiny_settings


def test_segmentation_without_a_positive_mask_is_undefined_not_perfect():
    values = {"dice": np.ones(4), "iou": np.ones(4), "truth": np.zeros(4)}  # all empty, all 1
    frame = pd.DataFrame({"patient_id": ["a", "b", "c", "d"]})
    summary = overlap_summary(frame, values, tiny_settings(bootstrap=20))
    assert summary["n_nonempty_truth"] == 0 and summary["undefined"] == UNDEFINED
    for key in ("dice", "iou", "dice_nonempty", "iou_nonempty"):
        assert math.isnan(summary[key]) and all(math.isnan(b) for b in summary[f"{key}_ci"])
    run = {
        "task": "finetune_seg",
        "dataset": "siim_acr",
        "variant": "medslip",
        "seed": 0,
        "ft_seed": 0,
        "pct": 100.0,
        "status": "ok",
        "images": {"train": 8},
        "chosen_epoch": 0,
        "test": summary,
        "_path": "x/metrics.json",
    }
    table = finetune_segmentation([run], {"siim_acr": "SynthCXR"})
    text = markdown(table)
    assert "1.000" not in text and "| n/a (n=0) |" not in text
    row = next(line for line in text.splitlines() if line.startswith("| SynthCXR"))
    assert row.count("| n/a ") == 4 and UNDEFINED in row


def test_segmentation_with_a_positive_mask_keeps_its_means():
    values = {"dice": np.array([1.0, 0.5]), "iou": np.array([1.0, 0.3]), "truth": np.array([0, 9])}
    summary = overlap_summary(pd.DataFrame({"patient_id": ["a", "b"]}), values, tiny_settings())
    assert summary["dice"] == pytest.approx(0.75) and "undefined" not in summary


def test_pretraining_curves_of_a_header_only_log_is_an_error(tmp_path, caplog):
    run = _pretrain_run(tmp_path, "medslip", 0, ["exist_p", "total"])
    epochs = run / RUN_FILES["epochs"]
    epochs.write_text(epochs.read_text().splitlines()[0] + "\n")
    _fails(["figure", "pretraining_curves", "--out", tmp_path / "c.png", "--runs", run], caplog,
           epochs, "no rows")  # fmt: skip
    assert not (tmp_path / "c.png").exists()


def test_pretraining_curves_of_a_short_or_garbled_log_is_an_error(tmp_path, caplog):
    run = _pretrain_run(tmp_path, "medslip", 0, ["exist_p", "total"])
    epochs = run / RUN_FILES["epochs"]
    lines = epochs.read_text().splitlines()
    epochs.write_text("\n".join(lines[:2]) + "\n")  # 1 of 3 epochs
    argv = ["figure", "pretraining_curves", "--out", tmp_path / "c.png", "--runs", run]
    _fails(argv, caplog, epochs, "epochs up to 1, but 3 were trained")
    steps = run / RUN_FILES["steps"]
    steps.write_text(steps.read_text().replace("\n1,2,", "\none,2,", 1))
    _fails(argv, caplog, steps, "epoch 'one' is not a number")


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param(
            "lorem ipsum\ndolor sit amet\n", ["columns ['variant'] are missing"], id="garbage"
        ),  # fmt: skip
        pytest.param("", ["empty file"], id="empty-file"),
        pytest.param("\x00\x01\x02garbage\xff", ["not a readable CSV"], id="binary"),
        pytest.param("variant,source\nmedslip,SynthCXR\n", ["no metric column"], id="no-metric"),
    ],
)
def test_ablation_figure_of_a_broken_table_is_an_error(tmp_path, caplog, text, names):
    table = tmp_path / "ablation.csv"
    table.write_bytes(text.encode("latin-1"))
    argv = ["figure", "ablation", "--table", table, "--out", tmp_path / "a.png"]
    _fails(argv, caplog, table, *names)
    assert not (tmp_path / "a.png").exists()


def test_ablation_figure_of_a_non_numeric_cell_is_an_error(tmp_path, caplog):
    table = _ablation_table(tmp_path)
    frame = pd.read_csv(table)
    column = next(c for c in frame.columns if c.endswith("_lo"))
    frame[column] = frame[column].astype(object)
    frame.loc[1, column] = "oops"
    frame.to_csv(table, index=False)
    argv = ["figure", "ablation", "--table", table, "--out", tmp_path / "a.png"]
    _fails(argv, caplog, table, "row 2", column, "'oops' is not a number")


@pytest.mark.parametrize("command", ["evaluate", "finetune"])
def test_cuda_on_a_cpu_only_machine_is_a_clear_error(tmp_path, caplog, monkeypatch, command):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    task = ["zeroshot"] if command == "evaluate" else ["cls", "--fraction", "1", "--ft-seed", "0"]
    argv = [command, *task, "--config", "{}", "--run-dir", tmp_path, "--data", tmp_path,
            "--dataset", "nih_cxr14", "--out", tmp_path / "o"]  # fmt: skip
    if command == "evaluate":
        argv += ["--books", tmp_path / "b.safetensors"]
    argv += ["--device", "cuda"]
    _fails(argv, caplog, "--device cuda", "no CUDA device")
    _fails([*argv[:-1], "gpu0"], caplog, "--device gpu0", "not a device")


def test_output_that_is_a_file_or_under_a_file_names_the_flag(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file")
    argv = ["pretrain-data", "--reports", tmp_path, "--data", tmp_path]
    _fails([*argv, "--out", blocker], caplog, "--out", blocker, "is a file, not a directory")
    _fails([*argv, "--out", blocker / "x"], caplog, "--out", blocker, "is a file")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    splits = ["splits", "--manifest", tmp_path / "m.parquet", "--seed", "0"]
    _fails([*splits, "--out", folder], caplog, "--out", folder, "is a directory")


def test_jobs_run_offline_and_figure_logs_stay_short(tmp_path):
    """The console script sets the Hugging Face offline switches (unless given) and a figure's
    log carries no fontTools lines."""
    code = (
        "import os, sys\n"
        "from medslip.cli import main\n"
        "main(['check-config', sys.argv[1]])\n"
        "print(os.environ['HF_HUB_OFFLINE'], os.environ['TRANSFORMERS_OFFLINE'])\n"
    )
    config = tmp_path / "c.yaml"
    config.write_text("{}\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(config)], capture_output=True, text=True, env=env
    )
    assert done.stdout.splitlines()[-1] == "1 1", done.stderr
    table = _ablation_table(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "medslip.cli", "figure", "ablation", "--table", str(table),
         "--out", str(tmp_path / "a.png")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "fontTools" not in done.stderr and (tmp_path / "a.pdf").is_file()


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        pytest.param(
            ["contact-sheet", "--tree", ".", "--truth", ".", "--n", "0"],
            ["--n 0"],
            id="contact-sheet-n",
        ),  # fmt: skip
        pytest.param(
            [
                "pretrain",
                "--config",
                "{}",
                "--variant",
                "medslip",
                "--seed",
                "0",
                "--data",
                "x",
                "--reports",
                "x",
                "--join",
                "x",
                "--books",
                "x",
                "--threads",
                "-2",
            ],
            ["--threads -2", "1 or more"],
            id="threads",
        ),  # fmt: skip
    ],
)
def test_nonsense_counts_are_refused_naming_the_flag(tmp_path, caplog, argv, names):
    _fails([*argv, "--out", tmp_path / "o" / "x.png"], caplog, *names)


def test_headline_metrics_of_a_broken_ablation_table_name_it(tmp_path, caplog):
    table = _ablation_table(tmp_path)
    argv = ["dvc-metrics", "headline", "--ablation", table, "--out", tmp_path / "h.json"]
    assert main([str(a) for a in argv]) == 0
    frame = pd.read_csv(table)
    column = headline_columns(list(frame.columns))[0]
    frame[column] = frame[column].astype(object)
    frame.loc[0, column] = "high"
    frame.to_csv(table, index=False)
    _fails(argv, caplog, table, "row 1", column, "'high' is not a number")
    pd.DataFrame({"a": [1]}).to_csv(table, index=False)
    _fails(argv, caplog, table, "key columns")


@pytest.mark.parametrize(
    ("name", "task", "missing"),
    [
        ("zero_shot_classification", "zeroshot", "no 'images'"),
        ("finetune_segmentation", "finetune_seg", "no 'pct'"),
    ],
)
def test_table_of_an_incomplete_metrics_file_names_it(tmp_path, caplog, name, task, missing):
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({"task": "zeroshot", "dataset": "nih_cxr14", "variant": "medslip",
                                "seed": 0, "status": "n/a", "reason": "no stream"}))  # fmt: skip
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"task": task, "dataset": "nih_cxr14", "variant": "medslip",
                               "seed": 1, "status": "ok"}))  # fmt: skip
    argv = ["table", name, "--sources", '{"nih_cxr14": "SynthCXR"}', "--csv", tmp_path / "t.csv",
            "--md", tmp_path / "t.md", "--metrics", good, bad]  # fmt: skip
    _fails(argv, caplog, bad, f"not a complete {task} metrics file ({missing})")
    assert not (tmp_path / "t.csv").exists()


def test_data_summary_of_a_broken_count_file_names_it(tmp_path, caplog):
    data = tmp_path / "nih_cxr14"
    (data / "shards").mkdir(parents=True)
    (data / "shards/summary.json").write_text('{"images": 3, "quarantined": 0}')
    counts = data / "split_counts.json"
    counts.write_text('{"train": {}, "val": 3, "seed": 0}')
    argv = ["dvc-metrics", "data", "--data-dirs", data, "--out", tmp_path / "d.json"]
    _fails(argv, caplog, counts, "no 'train' entry")
    split = {"images": 1, "patients": 1}
    counts.write_text(json.dumps({"train": split, "val": split, "test": split, "seed": 0}))
    assert main([str(a) for a in argv]) == 0
    (data / "shards/summary.json").write_text("[1, 2]")
    _fails(argv, caplog, data / "shards/summary.json", "not a JSON object")
