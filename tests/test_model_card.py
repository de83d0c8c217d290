"""``medslip model-card``: Hugging Face layout, every number from the run's files (model.json,
metrics files, split files, the real-data table), limitations by where the weights come from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medslip.cli import main
from medslip.hashing import sha256_of
from medslip.layout import RUN_FILES

SOURCES = {"mimic_cxr_jpg": "SynthCXR", "nih_cxr14": "SynthCXR", "covid_chestxray": "real"}
MODEL = {
    "image_size": 96,
    "trunk_layers": [1, 1, 1],
    "trunk_width": 16,
    "trunk_init": "random",
    "d_model": 64,
    "n_layers": 2,
    "n_heads": 4,
    "d_ffn": 128,
    "dropout": 0.1,
    "mask_activation": "none",
    "memory_norm": False,
    "init_std": 0.02,
    "positions": "none",
}


def _data_dir(root: Path, name: str, train: int) -> Path:
    folder = root / "results" / "data" / name
    folder.mkdir(parents=True)
    (folder / "splits.csv").write_text(f"image_id,patient_id,split\n{name}-1,p1,train\n")
    counts = {
        "train": {"images": train, "patients": train // 2},
        "val": {"images": 11, "patients": 5},
        "test": {"images": 23, "patients": 9},
        "seed": 1,
    }
    (folder / "split_counts.json").write_text(json.dumps(counts))
    return folder


def _run(root: Path, variant: str, meta: dict) -> Path:
    run = root / "results" / "models" / variant / "seed0"
    run.mkdir(parents=True)
    (run / RUN_FILES["weights"]).write_bytes(b"weights")
    base = {"variant": variant, "seed": 0, "model": MODEL, "git_commit": "abc123"}
    (run / RUN_FILES["meta"]).write_text(json.dumps(base | meta))
    return run


def _metrics(root: Path, task: str, variant: str, body: dict) -> Path:
    path = root / "results" / "eval" / task / "nih_cxr14" / variant / "seed0" / "metrics.json"
    path.parent.mkdir(parents=True)
    head = {"task": task, "dataset": "nih_cxr14", "variant": variant, "seed": 0}
    path.write_text(json.dumps(head | body))
    return path


def _zeroshot(root: Path, variant: str) -> Path:
    macro = {"auc": 0.646, "auc_ci": [0.606, 0.688], "f1": 0.3, "f1_ci": [0.2, 0.4]}
    body = {"status": "ok", "images": {"val": 11, "test": 23}, "macro": macro}
    return _metrics(root, "zeroshot", variant, body)


def _card(root: Path, run: Path, metrics: list[Path], *extra: str) -> str:
    out = root / "results" / "model_cards" / run.parent.name / "seed0" / "MODEL_CARD.md"
    data = [str(root / "results" / "data" / d) for d in ("mimic_cxr_jpg", "nih_cxr14")]
    args = ["model-card", "--run-dir", str(run), "--sources", json.dumps(SOURCES)]
    args += ["--data-dirs", *data, *extra, "--metrics", *map(str, metrics), "--out", str(out)]
    assert main(args) == 0
    return out.read_text()


@pytest.fixture
def root(tmp_path) -> Path:
    _data_dir(tmp_path, "mimic_cxr_jpg", 2000)
    _data_dir(tmp_path, "nih_cxr14", 300)
    table = tmp_path / "results" / "tables" / "real_lung_segmentation.csv"
    table.parent.mkdir(parents=True)
    rows = [
        {"variant": v, "pct": p, "dice": d, "dice_lo": d - 0.03, "dice_hi": d + 0.03}
        for v, p, d in [
            ("medslip", 100.0, 0.682),
            ("random_init", 100.0, 0.686),
            ("medslip", 1.0, 0.5),
        ]
    ]
    pd.DataFrame(rows).to_csv(table, index=False)
    return tmp_path


def test_a_synthcxr_run_card_takes_every_number_from_its_files(root):
    splits = root / "results" / "data" / "mimic_cxr_jpg" / "splits.csv"
    sha = hashlib.sha256(splits.read_bytes()).hexdigest()  # as sha256sum prints it
    meta = {
        "preset": "demo",
        "master_seed": 20240315,
        "epochs_trained": 5,
        "inputs": {"splits": sha256_of(splits), "label_matrix": "f00d"},
        "text_books": {"encoder": "all-MiniLM-L6-v2", "pooling": "mean", "books_sha256": "b00c"},
    }
    run = _run(root, "medslip", meta)
    na = _metrics(root, "grounding", "medslip", {"status": "n/a", "reason": "no maps here"})
    seg = {"status": "ok", "pct": "100", "ft_seed": 0, "images": {"train": 9, "val": 1, "test": 2}}
    seg = _metrics(
        root, "finetune_seg", "medslip", seg | {"test": {"dice": 0.1, "dice_ci": [0, 1]}}
    )
    real = root / "results" / "tables" / "real_lung_segmentation.csv"
    pretrain = ["--pretrain-data", str(root / "results" / "data" / "mimic_cxr_jpg")]
    runs = [_zeroshot(root, "medslip"), na, seg]
    text = _card(root, run, runs, *pretrain, "--real-table", str(real))
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["license"] == "mit" and "synthetic-data" in front["tags"]
    result = front["model-index"][0]["results"][0]
    assert result["task"]["type"] == "zero-shot-image-classification"
    assert result["metrics"][0] == {"type": "auc", "value": 0.646, "name": "macro AUC"}
    assert "| Zero-shot classification | nih_cxr14 | macro AUC | 0.646 [0.606, 0.688] |" in text
    assert "| Zero-shot grounding | nih_cxr14 | n/a | no maps here |" in text
    assert "| Dice, 100 % labels | 0.100 [0.000, 1.000] | 9 training images (100 %), ft" in text
    assert f"sha256 `{sha}`." in text and "2000 training images of 1000 patients" in text
    assert "| nih_cxr14 | SynthCXR | 11 / 23 |" in text
    assert "**Not a medical device.**" in text and "**Trained on SynthCXR**" in text
    assert "test Dice 0.682 [0.652, 0.712], against 0.686 [0.656, 0.716] from the random" in text
    assert "Preset `demo`" in text and "git commit `abc123`" in text
    assert 'medslip.load_pretrained("' in text


def test_an_imported_run_card_names_its_source(root):
    meta = {
        "imported": {"source": "the authors", "file": "MeDSLIP.pth", "sha256": "5ha", "epoch": 99},
        "architecture": {"preset": "paper", "matches": True},
        "load_report": {"loaded_tensors": 426},
        "text_books": {"encoder": "Bio_ClinicalBERT", "pooling": "cls", "books_sha256": "b0"},
    }
    run = _run(root, "medslip_official", meta)
    text = _card(root, run, [_zeroshot(root, "medslip_official")])
    assert yaml.safe_load(text.split("---\n")[1])["license"] == "other"
    assert "published: Shef-AIRE/MeDSLIP" in text and "`MeDSLIP.pth` (sha256 `5ha`)" in text
    assert "matches presets.paper" in text and "426 tensors loaded" in text
    assert "trained by their authors on MIMIC-CXR" in text and "**Not a medical device.**" in text


def test_metrics_of_another_run_are_refused(root, caplog):
    run = _run(root, "medslip", {"preset": "demo"})
    assert main(["model-card", "--run-dir", str(run), "--sources", "{}", "--metrics",
                 str(_zeroshot(root, "medklip")), "--out", str(root / "card.md")]) == 2  # fmt: skip
    assert "metrics of another run than" in caplog.text
