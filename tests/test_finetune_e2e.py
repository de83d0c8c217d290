"""``medslip finetune cls|seg`` end to end on a tiny random data-stage directory (LMDB shards
with masks, boxes in the index, published nested subsets) and tiny models saved like
pretraining runs: outputs, validation-only selection, seeded repeatability, bad input."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medslip.cli import main
from medslip.config import validate_config
from medslip.data.shards import ShardWriter
from medslip.model import create_model
from medslip.pretrain.checkpoint import save_final
from medslip.settings import FinetuneSettings, ModelSettings
from tests.test_evaluate_command import _outputs

TEXT_DIM, SHARD_SIZE, N_TRAIN, N_VAL, N_TEST = 8, 32, 12, 6, 6


def _settings(variant: str) -> ModelSettings:
    return ModelSettings(
        variant=variant,
        image_size=32,
        trunk_layers=(1, 1, 1),
        trunk_width=4,
        trunk_init="random",
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_ffn=32,
        dropout=0.1,
        mask_activation="none",
        memory_norm=False,
        init_std=0.02,
        positions="none",
    )


def save_run(root: Path, variant: str) -> Path:
    """A run directory written like ``medslip pretrain`` (save_final)."""
    run = root / "models" / variant / "seed0"
    run.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    books = torch.randn(75, TEXT_DIM, generator=generator), torch.randn(51, TEXT_DIM)
    torch.manual_seed(zlib.crc32(variant.encode()))  # variants differ
    model = create_model(_settings(variant), TEXT_DIM, *books, clip_temperature=0.07)
    meta = {"variant": variant, "seed": 0, "model": _settings(variant).to_dict()}
    save_final(run, model, meta)
    return run


def tiny_settings(**finetune) -> FinetuneSettings:
    block = {"epochs": 2, "batch_size": 5} | finetune
    bootstrap = block.pop("bootstrap", 30)
    config = {"seed": 3, "finetune": block, "evaluate": {"bootstrap": bootstrap}}
    return FinetuneSettings.from_config(validate_config(config), "rsna_pneumonia")


def _write_data(root: Path) -> Path:
    """Positives (every other image) have a bright square, its shard mask and its box."""
    data = root / "data"
    (data / "shards").mkdir(parents=True)
    rng = np.random.default_rng(0)
    n = N_TRAIN + N_VAL + N_TEST
    ids = [f"img{i:02d}" for i in range(n)]
    split = ["train"] * N_TRAIN + ["val"] * N_VAL + ["test"] * N_TEST
    positive = [i % 2 == 0 for i in range(n)]
    labels = [json.dumps({"Pneumonia": float(p), "Pneumothorax": float(p)}) for p in positive]
    pd.DataFrame({"image_id": ids, "labels": labels}).to_parquet(data / "manifest.parquet")
    in_train = [s == "train" for s in split]
    rank = np.cumsum(in_train) - 1  # nested subsets: the first 1, 2, all training images
    table = pd.DataFrame({"image_id": ids, "patient_id": [f"p{i // 2}" for i in range(n)]})
    table["split"] = split
    for pct, count in (("1", 1), ("10", 2), ("100", N_TRAIN)):
        table[f"subset_{pct}pct"] = [
            int(t and r < count) for t, r in zip(in_train, rank, strict=True)
        ]
    table.to_csv(data / "splits.csv", index=False)
    boxes, has_mask = [], []
    with ShardWriter(data / "shards" / "shard-00000.lmdb") as writer:
        for i, image_id in enumerate(ids):
            image = rng.integers(0, 120, (SHARD_SIZE, SHARD_SIZE), dtype=np.uint8)
            mask = None
            if positive[i]:
                y, x = rng.integers(2, 18, 2)
                image[y : y + 12, x : x + 12] = 230
                mask = np.zeros_like(image)
                mask[y : y + 12, x : x + 12] = 1
                boxes.append(json.dumps([["Lung Opacity", float(x), float(y), 12.0, 12.0]]))
            else:
                boxes.append("[]")
            writer.add(image_id, image, mask)
            has_mask.append(mask is not None)
    pd.DataFrame({"image_id": ids, "boxes": boxes, "has_mask": has_mask}).to_parquet(
        data / "shards" / "index.parquet"
    )
    summary = {"size": SHARD_SIZE, "aspect": "stretch", "shards": [{"file": "shard-00000.lmdb"}]}
    (data / "shards" / "summary.json").write_text(json.dumps(summary))
    return data


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("finetune")
    _write_data(root)
    for variant in ("medslip", "random_init"):
        save_run(root, variant)
    return root


def _finetune(
    work, task, dataset, out, variant="medslip", fraction="1.0", run=None, **finetune
) -> int:
    block = {"epochs": 3, "patience": 2, "batch_size": 4, "lr": 1e-3} | finetune
    config = {"seed": 3, "evaluate": {"bootstrap": 30}, "finetune": block}
    return main(
        [
            "finetune",
            task,
            "--config",
            json.dumps(config),
            "--run-dir",
            str(run or work / "models" / variant / "seed0"),
            "--data",
            str(work / "data"),
            "--dataset",
            dataset,
            "--fraction",
            fraction,
            "--ft-seed",
            "1",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )


def _check_selection(metrics: dict, key: str) -> None:
    curve = metrics["curve"]
    assert all(not k.startswith("test") for row in curve for k in row)
    values = [row[key] for row in curve]
    assert metrics["chosen_epoch"] == int(np.argmax(values))
    assert metrics["chosen_val_score"] == pytest.approx(max(values))


@pytest.mark.parametrize(
    ("dataset", "extra"),
    [("rsna_pneumonia", {}), ("siim_acr", {"use_base": False, "augment": False})],
)
def test_finetune_cls_end_to_end(work, tmp_path, dataset, extra):
    assert _finetune(work, "cls", dataset, tmp_path, **extra) == 0
    predictions, metrics = _outputs(tmp_path)
    assert metrics["status"] == "ok" and metrics["use_base"] == ("use_base" not in extra)
    assert metrics["images"]["train"] == N_TRAIN and metrics["images"]["test"] == N_TEST
    assert len(predictions) == N_VAL + N_TEST  # one class, every val/test image
    assert set(predictions["split"]) == {"val", "test"}
    assert predictions["label"].sum() == (N_VAL + N_TEST) / 2
    name = "Pneumonia" if dataset == "rsna_pneumonia" else "Pneumothorax"
    entry = metrics["classes"][name]
    assert entry["n_test_positive"] == 3 and 0 <= entry["auc"] <= 1
    assert entry["auc_ci"][0] <= entry["auc_ci"][1] and entry["threshold"] is not None
    assert metrics["transfer"]["n_loaded"] > 0 and metrics["transfer"]["n_missing"] == 0
    assert metrics["selection"] == "val_auc"
    _check_selection(metrics, "val_auc")
    again = tmp_path / "again"
    assert _finetune(work, "cls", dataset, again, **extra) == 0
    assert _outputs(again)[1] == metrics  # seeded: identical run, curve and intervals


@pytest.mark.parametrize("dataset", ["siim_acr", "rsna_pneumonia"])
def test_finetune_seg_end_to_end(work, tmp_path, dataset):
    assert _finetune(work, "seg", dataset, tmp_path, fraction="0.1") == 0
    predictions, metrics = _outputs(tmp_path)
    assert metrics["images"]["train"] == 2  # the published 10 % subset
    assert (predictions["split"] == "test").sum() == N_TEST  # none dropped (batch 4, 6 images)
    assert (predictions["truth_pixels"] > 0).sum() == (N_VAL + N_TEST) / 2
    assert predictions["dice"].between(0, 1).all()
    test = metrics["test"]
    assert test["n_images"] == N_TEST and test["n_nonempty_truth"] == 3
    rows = predictions[predictions["split"] == "test"]
    assert test["dice"] == pytest.approx(rows["dice"].mean())
    assert test["dice_ci"][0] <= test["dice"] <= test["dice_ci"][1]
    _check_selection(metrics, "val_dice")
    assert metrics["transfer"]["n_missing"] == 0


def test_variants_share_the_new_layers_init(work, tmp_path):
    """medslip and random_init differ only in the transferred trunk (paired comparison)."""
    outs = {}
    for variant in ("medslip", "random_init"):
        out = tmp_path / variant  # 1 training image: 64 px so layer4 has 2x2 values per channel
        assert _finetune(work, "cls", "rsna_pneumonia", out, variant, "0.01", image_size=64) == 0
        outs[variant] = _outputs(tmp_path / variant)[1]
    assert outs["medslip"]["seeds"] == outs["random_init"]["seeds"]
    assert outs["medslip"]["images"]["train"] == 1
    assert outs["medslip"]["curve"] != outs["random_init"]["curve"]


def test_bad_input(work, tmp_path):
    assert _finetune(work, "cls", "rsna_pneumonia", tmp_path, fraction="0.5") == 2
    assert _finetune(work, "seg", "nih_cxr14", tmp_path) == 2  # no segmentation truth
    broken = tmp_path / "models" / "medslip" / "seed0"
    broken.mkdir(parents=True)
    (broken / "model.json").write_text((work / "models/medslip/seed0/model.json").read_text())
    (broken / "model.safetensors").write_bytes(b"corrupt")
    assert _finetune(work, "cls", "rsna_pneumonia", tmp_path / "o", run=broken) == 2
    assert not (tmp_path / "o").exists()
