"""The frozen text side: descriptions, encoder loading, books and report embeddings (CPU)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch

from medslip.cli import main
from medslip.config import validate_config
from medslip.data.manifest import make_manifest, write_manifest
from medslip.errors import MedslipError
from medslip.model import text_books as text
from medslip.settings import TextSettings
from medslip.vocab import ENTITIES, LANDMARKS

OFFICIAL = ("PreTrain_MedKLIP", "Sample_zero-shot_Classification_CXR14")
LONG = "Blunting of the left costophrenic angle with a meniscus along the chest wall. " * 6


def settings(**text_block) -> TextSettings:
    """Schema defaults of ``text`` with ``text_block`` overriding."""
    return TextSettings.from_config(validate_config({"text": text_block}))


@pytest.fixture(scope="module")
def encoder():
    """(tokenizer, model, name, weights sha256) of the default encoder, loaded once."""
    return text.load_encoder(settings())


@pytest.fixture
def cached_encoder(encoder, monkeypatch):
    """Make ``build_books`` reuse the module's encoder instead of reloading it."""
    monkeypatch.setattr(text, "load_encoder", lambda _settings: encoder)


@pytest.fixture(scope="module")
def default_books(encoder):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(text, "load_encoder", lambda _settings: encoder)
        return text.build_books(settings())


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_packaged_descriptions_follow_entity_order():
    data = json.loads(text.DESCRIPTIONS_PATH.read_text())
    assert tuple(data) == ENTITIES
    descriptions = text.load_descriptions(None)
    assert descriptions == list(data.values())
    assert all(isinstance(d, str) and len(d) > 30 for d in descriptions)


@pytest.mark.parametrize("folder", OFFICIAL)
def test_official_descriptions_load(real_data, folder):
    path = real_data / "medklip" / folder / "observation explanation.json"
    descriptions = text.load_descriptions(path)
    keys = list(json.loads(path.read_text()))
    assert len(descriptions) == 75
    assert keys[0] == "normal" and keys[20] == "eumonia"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (json.dumps(dict.fromkeys(ENTITIES[:74], "text")), "74 descriptions"),
        ("{not json", "not valid JSON"),
        (json.dumps(list(ENTITIES)), "must be a JSON object"),
        (json.dumps({**dict.fromkeys(ENTITIES, "text"), "normal": 3}), "not non-empty strings"),
    ],
)
def test_bad_descriptions_are_refused(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(MedslipError, match=problem) as err:
        text.load_descriptions(path)
    assert str(path) in str(err.value)


def test_prompts():
    pathology, anatomy = text.prompts(settings())
    assert len(pathology) == 75 and len(anatomy) == 51
    assert anatomy[LANDMARKS.index("left_lower_lung")] == "It is located at left_lower_lung. "


def test_books_shapes_and_meta(default_books, encoder):
    books = default_books
    assert books.pathology.shape == (75, 384) and books.anatomy.shape == (51, 384)
    assert books.pathology.dtype == torch.float32 and books.dim == 384
    assert books.pathology_eval is books.pathology and books.anatomy_eval is books.anatomy
    meta = books.meta
    assert meta["weights_sha256"] == encoder[3] and meta["encoder"].startswith("all-MiniLM-L6-v2")
    assert len(meta["pathology_prompts_sha256"]) == 75 and len(meta["anatomy_prompts_sha256"]) == 51
    assert meta["books_sha256"] == text.books_sha256(books.tensors())


def test_books_are_deterministic_and_pooling_matters(cached_encoder):
    mean, again = (text.build_books(settings(max_length=32)) for _ in range(2))
    assert mean.meta["books_sha256"] == again.meta["books_sha256"]
    cls = text.build_books(settings(max_length=32, pooling="cls"))
    assert cls.pathology.shape == mean.pathology.shape
    assert not torch.allclose(cls.pathology, mean.pathology, atol=1e-3)
    assert cls.meta["books_sha256"] != mean.meta["books_sha256"]


def test_eval_max_length_truncates_long_descriptions(tmp_path, cached_encoder):
    descriptions = dict.fromkeys(ENTITIES, "A small left pleural effusion.")
    descriptions["effusion"] = LONG
    path = write_json(tmp_path / "long.json", descriptions)
    books = text.build_books(settings(descriptions=str(path), max_length=96, eval_max_length=64))
    changed = (books.pathology - books.pathology_eval).abs().amax(dim=1) > 1e-3
    assert changed.tolist() == [name == "effusion" for name in ENTITIES]
    torch.testing.assert_close(books.anatomy_eval, books.anatomy, atol=1e-4, rtol=0)


def test_books_round_trip(tmp_path, default_books):
    path = tmp_path / "books.safetensors"
    text.save_books(default_books, path)
    loaded = text.load_books(path)
    for key, value in default_books.tensors().items():
        assert torch.equal(getattr(loaded, key), value)
    assert loaded.meta == default_books.meta and loaded.dim == 384
    assert sorted(p.name for p in tmp_path.iterdir()) == ["books.json", "books.safetensors"]


def test_books_mismatching_sidecar_is_refused(tmp_path, default_books):
    path = tmp_path / "books.safetensors"
    text.save_books(default_books, path)
    sidecar = path.with_suffix(".json")
    write_json(sidecar, {**default_books.meta, "books_sha256": "0" * 64})
    with pytest.raises(MedslipError, match="does not match its sidecar") as err:
        text.load_books(path)
    assert str(path) in str(err.value)
    sidecar.unlink()
    with pytest.raises(MedslipError, match="books.json"):
        text.load_books(path)


def test_books_with_wrong_shapes_are_refused(tmp_path, default_books):
    path = tmp_path / "books.safetensors"
    tensors = {**default_books.tensors(), "anatomy": default_books.anatomy[:50]}
    text._save(path, tensors, default_books.meta)
    with pytest.raises(MedslipError, match=r"anatomy is torch.float32 \(50, 384\)"):
        text.load_books(path)


@pytest.mark.parametrize("name", ["/nonexistent/encoder", "medslip-test/not-a-cached-model"])
def test_missing_encoder_is_a_clear_error(name, no_network):
    with pytest.raises(MedslipError, match="text.encoder") as err:
        text.load_encoder(settings(encoder=name))
    assert repr(name) in str(err.value) and "local path" in str(err.value)


def mimic_tree(root: Path) -> pd.DataFrame:
    """Two MIMIC studies (three images) with reports under ``root``; their manifest."""
    reports = {
        "50000002": "INDICATION: cough.\n\nFINDINGS: Small right pleural effusion.\n\n"
        "IMPRESSION: Effusion.\n",
        "50000001": "No acute cardiopulmonary process.\n",
    }
    rows = []
    for study, report in reports.items():
        rel = f"files/p10/p10000001/s{study}.txt"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(report)
        for image in ("a", "b") if study == "50000002" else ("c",):
            rows.append({"image_id": f"{study}{image}", "study_id": study, "report": rel})
    frame = pd.DataFrame(rows)
    frame["path"] = frame["image_id"] + ".jpg"
    return make_manifest(frame, "mimic_cxr_jpg")


def test_embed_reports(tmp_path, encoder):
    tokenizer, model, _, _ = encoder
    config = settings(max_length=32)
    ids, embeddings = text.embed_reports(mimic_tree(tmp_path), tmp_path, config, tokenizer, model)
    assert ids == ["50000001", "50000002"] and embeddings.shape == (2, 384)
    expected = text.encode(
        ["No acute cardiopulmonary process.", "Small right pleural effusion. Effusion."],
        tokenizer,
        model,
        "mean",
        32,
        8,
    )
    torch.testing.assert_close(embeddings, expected, atol=1e-5, rtol=0)


def test_embed_reports_unreadable_report(tmp_path, encoder):
    manifest = mimic_tree(tmp_path)
    missing = tmp_path / manifest["report"].iloc[0]
    missing.unlink()
    with pytest.raises(MedslipError, match="cannot read report") as err:
        text.embed_reports(manifest, tmp_path, settings(), *encoder[:2])
    assert str(missing) in str(err.value)


def test_command_end_to_end(tmp_path, default_books, cached_encoder):
    config = tmp_path / "config.yaml"
    config.write_text("text:\n  max_length: 24\n")
    manifest = tmp_path / "manifest.parquet"
    write_manifest(mimic_tree(tmp_path / "mimic"), manifest)
    books, reports = tmp_path / "books.safetensors", tmp_path / "reports.safetensors"
    argv = ["text-books", "--config", str(config), "--out", str(books)]
    argv += ["--reports-manifest", str(manifest), "--root", str(tmp_path / "mimic")]
    assert main([*argv, "--reports-out", str(reports)]) == 0
    loaded = text.load_books(books)
    assert loaded.meta["max_length"] == 24 and loaded.pathology.shape == (75, 384)
    ids, embeddings, meta = text.load_report_embeddings(reports)
    assert ids == ["50000001", "50000002"] and embeddings.shape == (2, 384)
    assert meta["max_length"] == 24
    assert meta["weights_sha256"] == default_books.meta["weights_sha256"]


def test_command_needs_complete_report_options(tmp_path):
    config = write_json(tmp_path / "config.yaml", {})
    assert main(["text-books", "--config", str(config), "--root", str(tmp_path)]) == 2
    assert main(["text-books", "--config", str(config)]) == 2


def test_official_books_use_cls_and_the_official_lengths(cached_encoder, real_data):
    """The books imported checkpoints read, with the bundled encoder standing in for
    Bio_ClinicalBERT (only the width differs) and the official descriptions."""
    official = real_data / "medklip" / OFFICIAL[0] / "observation explanation.json"
    config = validate_config({"text": {"encoder": "/models/enc", "descriptions": str(official)}})
    books = text.build_books(TextSettings.official(config))
    meta = books.meta
    assert (meta["pooling"], meta["max_length"], meta["eval_max_length"]) == ("cls", 128, 64)
    assert meta["anatomy_template"] == "It is located at {landmark}. "
    assert meta["descriptions"] == str(official) and books.dim == 384
    assert not torch.equal(books.pathology, books.pathology_eval)  # 64 tokens cut long ones
