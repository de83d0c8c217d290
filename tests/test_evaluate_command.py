"""Grounding maps batched vs a per-image reference, and ``medslip evaluate`` end to end on a
tiny model saved like a pretraining run, over a small hand-made data-stage directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medslip.cli import main
from medslip.data.shards import ShardWriter
from medslip.evaluate.grounding import attention_maps, normalise, upsample
from medslip.layout import EVAL_FILES
from medslip.model import create_model
from medslip.model.text_books import TextBooks, books_sha256, save_books
from medslip.pretrain.checkpoint import save_final
from medslip.settings import ModelSettings
from medslip.vocab import ENTITY_INDEX

TEXT_DIM, SIZE, N = 8, 32, 12


def _settings(variant: str) -> ModelSettings:
    return ModelSettings(
        variant=variant,
        image_size=SIZE,
        trunk_layers=(1, 1, 1),
        trunk_width=4,
        trunk_init="random",
        d_model=16,
        n_layers=2,
        n_heads=2,
        d_ffn=32,
        dropout=0.1,
        mask_activation="none",
        memory_norm=False,
        init_std=0.02,
        positions="none",
    )


def _books() -> TextBooks:
    generator = torch.Generator().manual_seed(0)
    p, a = (
        torch.randn(75, TEXT_DIM, generator=generator),
        torch.randn(51, TEXT_DIM, generator=generator),
    )
    tensors = {"pathology": p, "anatomy": a, "pathology_eval": p, "anatomy_eval": a}
    return TextBooks(
        **tensors, dim=TEXT_DIM, meta={"books_sha256": books_sha256(tensors), "dim": TEXT_DIM}
    )


def _model(variant: str) -> torch.nn.Module:
    books = _books()
    torch.manual_seed(0)
    return create_model(
        _settings(variant), TEXT_DIM, books.pathology, books.anatomy, clip_temperature=0.07
    ).eval()


@pytest.mark.parametrize("use_ws_p", [False, True])
@pytest.mark.parametrize("batch_max", [False, True])
def test_batched_maps_equal_a_per_image_loop(use_ws_p, batch_max):
    model = _model("medslip")
    images = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    entities = torch.tensor([ENTITY_INDEX["pneumonia"], ENTITY_INDEX["effusion"]])
    with torch.no_grad():
        batched = normalise(attention_maps(model(images, True), entities, use_ws_p), batch_max)
        reference = torch.zeros_like(batched)
        for b in range(3):
            out = model(images[b : b + 1], return_attention=True)
            for c, e in enumerate(entities.tolist()):
                h = sum(layer[0, e] for layer in out.attn_p) / len(out.attn_p)
                if use_ws_p:
                    anatomy = sum(layer[0] for layer in out.attn_a) / len(out.attn_a)
                    h = torch.stack([h * anatomy[j] for j in range(51)]).mean(0)
                reference[b, c] = h
        peak = reference.amax(dim=(0, 2), keepdim=True) if batch_max else None
        for b in range(3):
            for c in range(2):
                reference[b, c] /= peak[0, c, 0] if batch_max else reference[b, c].max()
    torch.testing.assert_close(batched, reference, rtol=1e-5, atol=1e-7)
    assert batched.amax() == pytest.approx(1.0)
    up = upsample(batched[:, 0], 16, "nearest")
    assert up.shape == (3, 16, 16)
    # nearest x8 here (grid 2 -> 16): each token is an 8x8 block
    torch.testing.assert_close(up[:, :8, :8], batched[:, 0, 0, None, None].expand(3, 8, 8))


def _write_data(root: Path) -> Path:
    """A data-stage directory of one single-class dataset (RSNA layout): manifest, splits,
    one LMDB shard with masks for some positives, index with boxes, summary."""
    data = root / "data"
    (data / "shards").mkdir(parents=True)
    rng = np.random.default_rng(0)
    ids = [f"img{i:02d}" for i in range(N)]
    split = ["val"] * 4 + ["test"] * 6 + ["train"] * 2
    positive = [i % 2 == 0 for i in range(N)]
    labels = [json.dumps({"Pneumonia": float(p), "Normal": float(not p)}) for p in positive]
    pd.DataFrame({"image_id": ids, "labels": labels}).to_parquet(data / "manifest.parquet")
    patients = [f"p{i // 2}" for i in range(N)]
    pd.DataFrame({"image_id": ids, "patient_id": patients, "split": split}).to_csv(
        data / "splits.csv", index=False
    )
    boxes, has_mask = [], []
    with ShardWriter(data / "shards" / "shard-00000.lmdb") as writer:
        for i, image_id in enumerate(ids):
            mask = None
            if positive[i] and i % 4 == 0:
                mask = np.zeros((48, 48), np.uint8)
                mask[5:20, 10:30] = 1
            writer.add(image_id, rng.integers(0, 256, (48, 48), dtype=np.uint8), mask)
            has_mask.append(mask is not None)
            boxes.append(
                json.dumps([["Lung Opacity", 30.5, 8.0, 10.0, 12.0]] if positive[i] else [])
            )
    pd.DataFrame({"image_id": ids, "boxes": boxes, "has_mask": has_mask}).to_parquet(
        data / "shards" / "index.parquet"
    )
    summary = {"size": 48, "aspect": "stretch", "shards": [{"file": "shard-00000.lmdb"}]}
    (data / "shards" / "summary.json").write_text(json.dumps(summary))
    return data


def _run_dir(root: Path, variant: str) -> Path:
    run = root / "models" / variant / "seed0"
    run.mkdir(parents=True)
    books = _books()
    meta = {
        "variant": variant,
        "seed": 0,
        "model": _settings(variant).to_dict(),
        "train": {"clip_temperature": 0.07},
        "text_books": books.meta,
    }
    save_final(run, _model(variant), meta)
    return run


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evaluate")
    _write_data(root)
    save_books(_books(), root / "books.safetensors")
    for variant in ("medslip", "medklip", "global_clip", "random_init"):
        _run_dir(root, variant)
    return root


def _evaluate(work: Path, task: str, variant: str, out: Path, **config) -> int:
    block = {"bootstrap": 20, "batch_size": 5} | config
    return main(
        [
            "evaluate",
            task,
            "--config",
            json.dumps({"seed": 3, "evaluate": block}),
            "--run-dir",
            str(work / "models" / variant / "seed0"),
            "--books",
            str(work / "books.safetensors"),
            "--data",
            str(work / "data"),
            "--dataset",
            "rsna_pneumonia",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )


def _outputs(out: Path) -> tuple[pd.DataFrame, dict]:
    metrics = json.loads((out / EVAL_FILES["metrics"]).read_text())
    return pd.read_parquet(out / EVAL_FILES["predictions"]), metrics


@pytest.mark.parametrize("variant", ["medslip", "global_clip"])
def test_zeroshot_writes_scores_and_metrics(work, tmp_path, variant):
    assert _evaluate(work, "zeroshot", variant, tmp_path) == 0
    predictions, metrics = _outputs(tmp_path)
    assert metrics["status"] == "ok" and metrics["images"] == {"val": 4, "test": 6}
    assert len(predictions) == 10 and set(predictions["split"]) == {"val", "test"}
    assert predictions["score"].between(0, 1).all()
    pneumonia = metrics["classes"]["Pneumonia"]
    assert pneumonia["n_test_positive"] == 3 and pneumonia["n_val_positive"] == 2
    assert 0 <= pneumonia["auc"] <= 1 and pneumonia["threshold"] is not None
    for key in ("auc", "f1", "accuracy", "oracle_f1", "oracle_accuracy"):
        lo, hi = pneumonia[f"{key}_ci"]
        assert lo <= hi
    assert metrics["macro"]["auc"] == pneumonia["auc"]
    again = tmp_path / "again"
    _evaluate(work, "zeroshot", variant, again)
    assert _outputs(again)[1] == metrics  # seeded: identical intervals


def test_zeroshot_random_init_is_not_applicable(work, tmp_path):
    assert _evaluate(work, "zeroshot", "random_init", tmp_path) == 0
    predictions, metrics = _outputs(tmp_path)
    assert metrics["status"] == "n/a" and "classes" not in metrics and predictions.empty


def test_class_without_positives_is_nan_with_a_note(work, tmp_path):
    maps = {"rsna_pneumonia": {"Normal": "normal", "Pneumonia": "pneumonia"}}
    data = work / "data"
    manifest = pd.read_parquet(data / "manifest.parquet")
    try:  # make every test image "Normal" 0
        edited = manifest.copy()
        edited["labels"] = [
            json.dumps({"Pneumonia": 1.0, "Normal": 0.0}) if i >= 4 else text
            for i, text in enumerate(manifest["labels"])
        ]
        edited.to_parquet(data / "manifest.parquet")
        assert _evaluate(work, "zeroshot", "medslip", tmp_path, entity_maps=maps) == 0
    finally:
        manifest.to_parquet(data / "manifest.parquet")
    _, metrics = _outputs(tmp_path)
    assert metrics["classes"]["Normal"]["auc"] is None
    assert metrics["classes"]["Pneumonia"]["auc"] is None  # all test positive
    assert any("Normal: test has 0" in note for note in metrics["notes"])


def test_unmapped_labels_and_missing_checkpoint_are_clear_errors(work, tmp_path, caplog):
    maps = {"rsna_pneumonia": {"Lung Opacity": "opacity", "Pneumonia": "pneumonia"}}
    assert _evaluate(work, "zeroshot", "medslip", tmp_path, entity_maps=maps) == 2
    assert "['Lung Opacity'] are not labels" in caplog.text
    assert "['Normal', 'Pneumonia']" in caplog.text
    flu = {"rsna_pneumonia": {"Pneumonia": "flu"}}
    assert _evaluate(work, "zeroshot", "medslip", tmp_path, entity_maps=flu) == 2
    assert "not MeDSLIP entities: ['flu']" in caplog.text
    broken = work / "models" / "broken" / "seed0"
    broken.mkdir(parents=True)
    (broken / "model.json").write_text((work / "models/medslip/seed0/model.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    assert _evaluate(work, "zeroshot", "broken", tmp_path) == 2
    assert f"{broken / 'model.safetensors'}: not a readable safetensors file" in caplog.text


@pytest.mark.parametrize(
    "variant, flags",
    [
        ("medslip", {}),
        ("medslip", {"use_ws_p": True, "batch_max_normalisation": True, "upsample": "nearest"}),
        ("medklip", {"use_ws_p": True}),
    ],
)
def test_grounding_writes_per_pair_values_and_tau_from_validation(work, tmp_path, variant, flags):
    assert _evaluate(work, "grounding", variant, tmp_path, grounding=flags) == 0
    predictions, metrics = _outputs(tmp_path)
    official = metrics["truths"]["official"]
    # positives: val img00, img02; test img04, img06, img08 (boxes; img00, img04, img08 masks too)
    assert official["n_val"] == 2 and official["n_test"] == 3
    assert official["tau_val"] in [k / 100 for k in range(101)]
    assert set(predictions["image_id"]) == {"img00", "img02", "img04", "img06", "img08"}
    assert predictions["truth_pixels"].tolist()[:2] == [20 * 15 + 11 * 12, 11 * 12]
    assert predictions["pointing"].isin([0.0, 1.0]).all()
    tau_zero = predictions["pred_fraction_tau_0"]
    assert (tau_zero == 1.0).all()  # softmax attention: every pixel > 0
    assert any("τ = 0 is degenerate" in note for note in metrics["notes"])
    macro = official["macro"]
    for key in ("pointing", "pixel_auroc", "dice_tau_val", "iou_tau_val", "dice_tau_0.01"):
        assert macro[key] is not None and macro[f"{key}_ci"][0] <= macro[f"{key}_ci"][1]
    assert metrics["protocol"]["use_ws_p"] == (variant == "medslip" and bool(flags))
    uniform = metrics["protocol"]["uniform_entropy"]
    assert 0 < macro["attention_entropy"] <= uniform + 1e-9
    assert (predictions["attention_entropy"] <= uniform + 1e-9).all()
    if variant == "medklip":
        assert "use_ws_p ignored" in " ".join(metrics["notes"])


def test_grounding_global_clip_is_not_applicable(work, tmp_path):
    assert _evaluate(work, "grounding", "global_clip", tmp_path) == 0
    assert _outputs(tmp_path)[1]["status"] == "n/a"


def test_upsample_puts_token_centres_where_the_trunk_does():
    """Token i of a 16-pixel-stride trunk is centred on pixel 16·i (every stride-2 layer keeps
    output j on input 2·j): a one-hot token map peaks there after bilinear upsampling, and the
    oracle pooling is the inverse of the upsampling on the same cells."""
    from medslip.evaluate.grounding import pooled

    tokens = torch.zeros(1, 36)
    tokens[0, 2 * 6 + 3] = 1.0
    up = upsample(tokens, 96, "bilinear")[0]
    assert divmod(int(up.argmax()), 96) == (32, 48)
    assert float(up[32, 48]) == pytest.approx(1.0)
    mask = torch.zeros(1, 96, 96, dtype=torch.bool)
    mask[0, 28:37, 44:53] = True  # a 9-pixel square on the centre of token (2, 3)
    cells = pooled(mask, 6, "bilinear").view(6, 6)
    assert int(cells.argmax()) == 2 * 6 + 3 and int((cells > 0).sum()) == 1
    flat = torch.rand(3, 64)
    assert torch.allclose(pooled(upsample(flat, 128, "nearest"), 8, "nearest"), flat, atol=1e-6)
