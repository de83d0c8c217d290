"""Importing published checkpoints: the official key layout (tests/data/official_keys.json,
written down from the official model files), the mapping onto our models and back, identical
outputs after an import, and every refusal with its message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medslip.cli import main
from medslip.config import defaults
from medslip.hashing import sha256_file
from medslip.model import create_model
from medslip.model.official import official_checkpoint, to_official
from medslip.model.text_books import TextBooks, books_sha256, save_books
from medslip.pretrain.checkpoint import load_pretrained
from medslip.settings import ModelSettings
from tests.conftest import REPO

OFFICIAL_KEYS = json.loads((REPO / "tests" / "data" / "official_keys.json").read_text())
FAMILIES = {"medslip": "medslip_official", "medklip": "medklip_official"}
TEXT_DIM = 768  # Bio_ClinicalBERT, as the official query projections


def paper_settings(variant: str) -> ModelSettings:
    model = dict(defaults()["presets"]["paper"]["model"])
    return ModelSettings(variant=variant, **{**model, "trunk_layers": tuple(model["trunk_layers"])})


def small_settings(variant: str) -> ModelSettings:
    """A model too small for the paper preset (refusal tests need no full-size file)."""
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


def write_books(path: Path, dim: int) -> Path:
    generator = torch.Generator().manual_seed(dim)
    p, a = torch.randn(75, dim, generator=generator), torch.randn(51, dim, generator=generator)
    tensors = {"pathology": p, "anatomy": a, "pathology_eval": p, "anatomy_eval": a}
    meta = {"books_sha256": books_sha256(tensors), "dim": dim, "encoder": "test", "pooling": "cls"}
    save_books(TextBooks(**tensors, dim=dim, meta=meta), path)
    return path


def model_of(settings: ModelSettings, books: Path) -> torch.nn.Module:
    from medslip.model.text_books import load_books

    loaded = load_books(books)
    torch.manual_seed(7)
    return create_model(settings, loaded.dim, loaded.pathology_eval, loaded.anatomy_eval).eval()


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("books") / "models"
    root.mkdir()
    return write_books(root / "text_books_official.safetensors", TEXT_DIM)


@pytest.mark.parametrize("family", FAMILIES)
def test_official_layout_of_our_model_is_the_official_key_list(family):
    """(b): our paper-size model, mapped to the official layout, has exactly the official keys
    and shapes (DDP prefixes, the numbered trunk and, for MeDSLIP, the shared norm twice)."""
    model = create_model(
        paper_settings(FAMILIES[family]),
        TEXT_DIM,
        torch.zeros(75, TEXT_DIM),
        torch.zeros(51, TEXT_DIM),
    )
    official = to_official(model.state_dict(), family)
    expected = OFFICIAL_KEYS[family]["keys"]
    assert {k: list(v.shape) for k, v in official.items()} == expected
    assert "7cfceb1" in OFFICIAL_KEYS["medslip"]["source"]


@pytest.mark.parametrize("family", FAMILIES)
def test_an_official_checkpoint_imports_to_identical_outputs(books, family, tmp_path):
    """(a): our model -> the official layout with AdamW state, config and epoch (as the
    official training scripts save it) -> import -> the same outputs within 1e-6."""
    variant = FAMILIES[family]
    model = model_of(paper_settings(variant), books)
    path = tmp_path / f"{family}.pth"
    torch.save(official_checkpoint(model, family, paper_settings(variant)), path)
    run = books.parent / variant / "seed0"
    assert main(["import-checkpoint", str(path), "--variant", family, "--out", str(run)]) == 2
    code = ["import-checkpoint", str(path), "--variant", family, "--books", str(books)]
    assert main([*code, "--out", str(run)]) == 0
    meta = json.loads((run / "model.json").read_text())
    assert meta["variant"] == variant and meta["seed"] == 0
    assert meta["imported"]["sha256"] == sha256_file(path) and meta["imported"]["epoch"] == 99
    assert meta["architecture"]["preset"] == "paper" and meta["architecture"]["matches"]
    assert meta["architecture"]["from_config"] == {"n_heads": 4, "dropout": 0.1, "image_size": 224}
    report = meta["load_report"]
    assert report["missing"] == [] == report["unexpected"] and report["ddp_prefix_stripped"]
    assert report["not_loaded"] == ["config", "epoch", "lr_scheduler", "optimizer"]
    imported = load_pretrained(run)  # the official books beside the run folder
    images = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before, after = model(images, return_attention=True), imported(images, True)
    torch.testing.assert_close(after.logits_p, before.logits_p, atol=1e-6, rtol=0)
    for a, b in zip(after.attn_p, before.attn_p, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    if family == "medslip":
        torch.testing.assert_close(after.h_a, before.h_a, atol=1e-6, rtol=0)


def _save_small(tmp_path: Path, family: str, edit=None) -> Path:
    variant = FAMILIES[family]
    books = write_books(tmp_path / "books.safetensors", 8)
    model = model_of(small_settings(variant), books)
    checkpoint = official_checkpoint(model, family, small_settings(variant))
    if edit is not None:
        edit(checkpoint)
    path = tmp_path / f"{family}.pth"
    torch.save(checkpoint, path)
    return path


def _import(path: Path, variant: str, tmp_path: Path) -> int:
    books = tmp_path / "books.safetensors"
    if not books.exists():
        write_books(books, 8)
    out = tmp_path / "run"
    return main(["import-checkpoint", str(path), "--variant", variant, "--books", str(books),
                 "--out", str(out)])  # fmt: skip


def test_a_truncated_file_is_refused(tmp_path, caplog):
    path = _save_small(tmp_path, "medslip")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert _import(path, "medslip_official", tmp_path) == 2
    assert f"{path}: not a readable torch checkpoint (truncated?)" in caplog.text


def test_a_checkpoint_of_the_other_family_is_refused(tmp_path, caplog):
    path = _save_small(tmp_path, "medklip")
    assert _import(path, "medslip_official", tmp_path) == 2
    assert "a medklip checkpoint (no module.pathology_embedding_layer.weight)" in caplog.text
    assert "refused for medslip_official" in caplog.text


def test_a_missing_key_is_named(tmp_path, caplog):
    path = _save_small(
        tmp_path, "medslip", lambda c: c["model"].pop("module.classifier_pathology.bias")
    )
    assert _import(path, "medslip_official", tmp_path) == 2
    assert "missing 1 ['module.classifier_pathology.bias']; unexpected 0" in caplog.text


def test_an_unexpected_key_and_unequal_shared_norms_are_named(tmp_path, caplog):
    def extra(checkpoint):
        checkpoint["model"]["module.logit_scale"] = torch.zeros(())

    assert _import(_save_small(tmp_path, "medslip", extra), "medslip_official", tmp_path) == 2
    assert "missing 0 []; unexpected 1 ['module.logit_scale']" in caplog.text

    def split(checkpoint):  # the two aliases are one tensor: give one a copy of its own
        key = "module.decoder_anatomy.norm.weight"
        checkpoint["model"][key] = checkpoint["model"][key] + 1

    assert _import(_save_small(tmp_path, "medslip", split), "medslip_official", tmp_path) == 2
    assert "module.decoder_anatomy.norm.weight differ" in caplog.text


def test_an_architecture_other_than_the_paper_preset_is_refused(tmp_path, caplog):
    assert _import(_save_small(tmp_path, "medklip"), "medklip_official", tmp_path) == 2
    assert "architecture differs from presets.paper: d_ffn 32 (paper 1024);" in caplog.text
    assert "image_size 32 (paper 224)" in caplog.text
    assert "trunk_layers [1, 1, 1] (paper [3, 4, 6])" in caplog.text


def test_books_of_another_dimension_are_refused(tmp_path, caplog):
    path = _save_small(tmp_path, "medklip")
    write_books(tmp_path / "books.safetensors", 12)
    assert _import(path, "medklip_official", tmp_path) == 2
    assert "text books of dimension 12, but the checkpoint's query projection takes 8" in (
        caplog.text
    )


def test_a_file_needing_more_than_weights_only_pickle_is_refused(tmp_path, caplog):
    path = tmp_path / "pickled.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "config": Path("configs/x.yaml")}, path)
    assert _import(path, "medslip_official", tmp_path) == 2
    assert "refused: it needs pickle beyond tensors and plain containers" in caplog.text
    assert "pathlib" in caplog.text and "arbitrary code" in caplog.text


def test_a_variant_trained_here_is_not_imported(tmp_path):
    from medslip.errors import MedslipError
    from medslip.pretrain.import_checkpoint import import_checkpoint

    with pytest.raises(MedslipError, match="medslip: trained by this workflow"):
        import_checkpoint(tmp_path / "x.pth", "medslip", tmp_path / "b", tmp_path / "run")


def test_the_official_books_need_a_local_encoder_and_say_how_to_get_it(tmp_path, caplog):
    out = tmp_path / "text_books_official.safetensors"
    assert main(["text-books", "--official", "--config", "{}", "--out", str(out)]) == 2
    assert "hf download emilyalsentzer/Bio_ClinicalBERT --local-dir DIR" in caplog.text
    assert "text.descriptions: imported checkpoints need the official" in caplog.text
    assert not out.exists()
