"""``medslip predict`` and ``medslip.load_pretrained``: PNG, JPEG and DICOM through the
preprocessing decoders, the entity table with its class views, validation thresholds with their
source, overlays, the CLI, and the README's example run as written."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import medslip
from medslip.cli import main
from medslip.data.dataset import eval_transform
from medslip.data.decode import decode, resize
from medslip.errors import MedslipError
from medslip.labels import CHEXPERT_RULES, class_entities
from medslip.model.text_books import save_books
from medslip.pretrain.checkpoint import save_final
from medslip.vocab import CHESTXRAY14_CLASSES, ENTITIES
from tests.conftest import REPO
from tests.test_evaluate_command import SIZE, _books, _model, _settings

CHEXPERT = class_entities(CHEXPERT_RULES)
ROWS = len(ENTITIES) + len(CHESTXRAY14_CLASSES) + len(CHEXPERT)


def write_dicom(path: Path, pixels: np.ndarray) -> None:
    """A plain MONOCHROME2 8-bit DICOM of ``pixels`` (H, W) uint8."""
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.PhotometricInterpretation = "CR", "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 8, 8, 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


def make_run(root: Path, variant: str = "medslip") -> Path:
    """``root/results/models/{variant}/seed0`` (a tiny model) with the books beside it."""
    models = root / "results" / "models"
    run = models / variant / "seed0"
    books = _books()
    save_books(books, models / "text_books.safetensors")
    meta = {
        "variant": variant,
        "seed": 0,
        "model": _settings(variant).to_dict(),
        "train": {"clip_temperature": 0.07},
        "text_books": books.meta,
    }
    save_final(run, _model(variant), meta)
    return run


def make_images(folder: Path) -> list[Path]:
    """A PNG, a JPEG and a DICOM of different sizes (rectangular, larger than the model side)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    png, jpeg, dcm = folder / "a.png", folder / "b.jpg", folder / "c.dcm"
    Image.fromarray(rng.integers(0, 256, (70, 50), dtype=np.uint8)).save(png)
    Image.fromarray(rng.integers(0, 256, (64, 80), dtype=np.uint8)).save(jpeg, quality=90)
    write_dicom(dcm, rng.integers(0, 256, (48, 40), dtype=np.uint8))
    return [png, jpeg, dcm]


@pytest.fixture
def run(tmp_path) -> Path:
    return make_run(tmp_path)


def test_probabilities_are_the_evaluation_path_on_the_decoded_images(run, tmp_path):
    images = make_images(tmp_path / "images")
    model = medslip.load_pretrained(run)
    table = model.predict(tmp_path / "images")  # a folder: every image below it, sorted
    assert table["image"].unique().tolist() == [str(p) for p in images]
    assert len(table) == 3 * ROWS and table["overlay"].eq("").all()
    reference = _model("medslip")
    for path in images:
        pixels, w, h = decode(path.read_bytes(), str(path), SIZE)
        image, _ = resize(pixels, SIZE, "stretch", w, h)
        x = eval_transform(torch.from_numpy(np.array(image))[None, None], SIZE)
        with torch.no_grad():
            expected = reference.existence_probability(x)[0]
        rows = table[(table["image"] == str(path)) & (table["view"] == "entity")]
        assert rows["finding"].tolist() == list(ENTITIES)
        np.testing.assert_allclose(rows["probability"], expected.numpy(), atol=1e-6)
        by_entity = dict(zip(rows["finding"], rows["probability"], strict=True))
        views = table[table["image"] == str(path)].set_index(["view", "finding"])["probability"]
        assert views["chestxray14", "Fibrosis"] == by_entity["tail_abnorm_obs"]  # official map
        support = max(by_entity[e] for e in CHEXPERT["Support Devices"])
        assert views["chexpert", "Support Devices"] == support
    assert table["call"].isna().all() and table["threshold_source"].eq("").all()


def test_validation_thresholds_give_calls_and_name_their_source(run, tmp_path):
    make_images(tmp_path / "images")
    metrics = tmp_path / "results/eval/zeroshot/nih_cxr14/medslip/seed0/metrics.json"
    metrics.parent.mkdir(parents=True)
    classes = {c: {"entity": "pneumonia", "threshold": 0.5} for c in ("Pneumonia",)}
    classes["Hernia"] = {"entity": "hernia", "threshold": None}  # no validation positive
    metrics.write_text(json.dumps({"status": "ok", "dataset": "nih_cxr14", "classes": classes}))
    table = medslip.load_pretrained(run).predict([tmp_path / "images"])
    called = table[table["call"].notna()]
    assert set(called["finding"]) == {"Pneumonia"} and len(called) == 3
    assert (called["call"] == (called["probability"] >= 0.5)).all()
    assert called["threshold_source"].str.contains(str(metrics)).all()
    assert called["threshold_source"].str.contains("nih_cxr14 validation").all()


def test_cli_writes_parquet_and_one_overlay_per_image(run, tmp_path, caplog):
    caplog.set_level("INFO")
    images = make_images(tmp_path / "images")
    out = tmp_path / "out" / "scores.parquet"
    args = ["predict", str(images[0]), str(images[2]), "--run-dir", str(run), "--out", str(out)]
    assert main([*args, "--top", "2", "--batch-size", "1"]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 2 * ROWS and str(table["call"].dtype) == "boolean"
    overlays = sorted((tmp_path / "out" / "scores_overlays").iterdir())
    assert [p.name for p in overlays] == ["a.png", "c.png"]
    assert set(table["overlay"]) == {str(p) for p in overlays}
    assert Image.open(overlays[0]).size == (3 * SIZE, SIZE)  # the image and two maps
    assert "2 images ->" in caplog.text


def test_refusals_name_the_problem(tmp_path, caplog):
    run = make_run(tmp_path, "random_init")
    with pytest.raises(MedslipError, match="no zero-shot head"):
        medslip.load_pretrained(run)
    medslip_run = make_run(tmp_path, "medslip")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert main(["predict", str(broken), "--run-dir", str(medslip_run)]) == 2
    assert f"{broken}: " in caplog.text
    assert main(["predict", str(tmp_path / "nothing"), "--run-dir", str(medslip_run)]) == 2
    assert "nothing: no such image file or folder" in caplog.text


def test_a_model_without_maps_predicts_without_overlays(tmp_path):
    run = make_run(tmp_path, "global_clip")
    images = make_images(tmp_path / "images")
    table = medslip.load_pretrained(run).predict(images, overlays=tmp_path / "overlays")
    assert len(table) == 3 * ROWS and table["overlay"].eq("").all()
    assert not (tmp_path / "overlays").exists()


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### The Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 6
    make_run(tmp_path)
    make_images(tmp_path / "more_images")
    (tmp_path / "more_images" / "a.png").rename(tmp_path / "chest.png")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    assert "Pneumonia" in printed.getvalue() and "chest.png" in printed.getvalue()


@pytest.mark.parametrize("variant", ["medslip", "medklip"])
def test_the_pathology_stream_alone_gives_forward_s_probabilities_and_maps(variant):
    model = _model(variant)
    images = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        probs, maps = model.existence(images, return_attention=True)
        out = model(images, return_attention=True)
    torch.testing.assert_close(probs, out.logits_p.softmax(-1)[..., 1])
    torch.testing.assert_close(probs, model.existence_probability(images))
    for mine, full in zip(maps, out.attn_p, strict=True):
        torch.testing.assert_close(mine, full)


def test_overlay_panels_blend_the_hot_colours_in_proportion_to_the_map():
    from medslip.predict import overlay_panels

    image = np.full((4, 4), 100, np.uint8)
    maps = np.stack([np.zeros((4, 4)), np.ones((4, 4))])
    panels = overlay_panels(image, maps)
    assert panels.shape == (4, 12, 3) and panels.dtype == np.uint8
    assert (panels[:, :8] == 100).all()  # the image, and the image where the map is 0
    np.testing.assert_allclose(panels[:, 8:], 0.4 * 100 + 0.6 * 255, atol=1)  # white at 1
