"""Bad input at the pretraining boundary (issue 20): the report stage's label matrices and id
list as ``medslip pretrain-data`` and the training loader read them, and a run's
``model.json`` against the ``model.safetensors`` it was saved with."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_model

from medslip.cli import main
from medslip.errors import MedslipError
from medslip.layout import RUN_FILES
from medslip.pretrain.checkpoint import load_pretrained, read_run_meta, save_final
from medslip.pretrain.join import load_report_labels, load_tables
from tests._cli import fails as _fails

REPORTS = {
    "50000001": "FINDINGS: Small left pleural effusion.",
    "50000002": "FINDINGS: Heart size is normal. Lungs are clear.",
    "50000003": "IMPRESSION: Right lower lobe pneumonia.",
    "50000004": "IMPRESSION: Mild cardiomegaly. No pneumothorax.",
}


@pytest.fixture
def stages(tmp_path):
    """(reports dir, data dir) of four studies with one image each, as the stages write them."""
    csv = tmp_path / "reports.csv"
    pd.DataFrame({"report_id": list(REPORTS), "text": list(REPORTS.values())}).to_csv(
        csv, index=False
    )
    reports = tmp_path / "reports"
    argv = ["parse-reports", "--format", "text_csv", "--input", csv, "--out-dir", reports]
    assert main([str(a) for a in argv]) == 0
    images, data = tmp_path / "images", tmp_path / "data"
    images.mkdir()
    for i, study in enumerate(REPORTS):
        pixels = np.random.default_rng(i).integers(0, 255, (32, 32), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"img{study}.png")
    argv = ["preprocess", "--images", images, "--out", data / "shards", "--size", 16]
    assert main([str(a) for a in argv]) == 0
    ids = [f"img{s}" for s in REPORTS]
    pd.DataFrame({"image_id": ids, "study_id": list(REPORTS)}).to_parquet(data / "manifest.parquet")
    pd.DataFrame(
        {"image_id": ids, "patient_id": ["p1", "p2", "p3", "p4"], "split": ["train"] * 3 + ["val"]}
    ).to_csv(data / "splits.csv", index=False)
    return reports, data


def _join(stages, out) -> list:
    reports, data = stages
    return ["pretrain-data", "--reports", reports, "--data", data, "--out", out]


def test_good_stages_join(stages, tmp_path):
    assert main([str(a) for a in _join(stages, tmp_path / "join")]) == 0
    images = pd.read_parquet(tmp_path / "join/images.parquet")
    assert images["row"].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("edit", "names"),
    [
        pytest.param(lambda ids: ids[1:], ["3 report ids for the 4 rows"], id="first-line-lost"),
        pytest.param(lambda ids: ["study_id", *ids], ["5 report ids"], id="header-line-added"),
        pytest.param(lambda ids: ids[1:] + ids[:1], ["line 1 is 50000002"], id="shifted-by-one"),
        pytest.param(lambda ids: [ids[0], *ids[:3]], ["line 2", "already on line 1"], id="twice"),
        pytest.param(lambda ids: [ids[0], "", *ids[1:]], ["line 2", "''"], id="blank-line"),
    ],
)
def test_shifted_or_broken_id_list_is_refused(stages, tmp_path, caplog, edit, names):
    reports, _ = stages
    path = reports / "report_ids.txt"
    path.write_text("".join(f"{i}\n" for i in edit(path.read_text().split())))
    _fails(_join(stages, tmp_path / "join"), caplog, path, *names)
    assert not (tmp_path / "join").exists()


def _matrix(reports, change) -> None:
    path = reports / "label_matrix.npy"
    np.save(path, change(np.load(path)))


@pytest.mark.parametrize(
    ("change", "names"),
    [
        pytest.param(lambda m: m.astype(float) * np.nan, ["dtype float64"], id="nan"),
        pytest.param(
            lambda m: np.where(m == 1, 3, m).astype(np.int8), ["{-1, 0, 1}", "3"], id="value-3"
        ),  # fmt: skip
        pytest.param(lambda m: m[:, :, :74], ["(4, 51, 74)", "75 entities"], id="74-entities"),
        pytest.param(lambda m: m[:3], ["4 report ids for the 3 rows"], id="fewer-rows"),
        pytest.param(lambda m: m.astype(np.int16), ["dtype int16"], id="int16"),
    ],
)
def test_label_matrix_is_checked_against_the_vocabulary(stages, tmp_path, caplog, change, names):
    reports, _ = stages
    _matrix(reports, change)
    _fails(_join(stages, tmp_path / "join"), caplog, reports / "label_matrix.npy", *names)


def test_manifest_without_study_ids_is_refused(stages, tmp_path, caplog):
    _, data = stages
    manifest = data / "manifest.parquet"
    pd.read_parquet(manifest).drop(columns="study_id").to_parquet(manifest)
    _fails(_join(stages, tmp_path / "j"), caplog, manifest, "['study_id'] are missing")


def test_uncertain_mask_and_unreadable_arrays(stages, tmp_path, caplog):
    reports, _ = stages
    mask = reports / "uncertain_mask.npy"
    np.save(mask, np.load(mask)[:, :50])
    _fails(_join(stages, tmp_path / "j"), caplog, mask, "expected bool (4, 51, 75)")
    mask.write_bytes(b"not an array")
    _fails(_join(stages, tmp_path / "j"), caplog, mask, "not a readable .npy array")


def test_training_loader_checks_the_same_and_the_join(stages, tmp_path):
    """What ``medslip pretrain`` reads: the same checks, and a join made before the id list
    changed points at other studies' rows."""
    reports, _ = stages
    assert main([str(a) for a in _join(stages, tmp_path / "join")]) == 0
    assert load_tables(tmp_path / "join", reports, "unmentioned").matrices.shape == (4, 51, 75)
    _matrix(reports, lambda m: np.where(m == 1, 2, m).astype(np.int8))
    with pytest.raises(MedslipError, match="values not in"):
        load_tables(tmp_path / "join", reports, "unmentioned")
    _matrix(reports, lambda m: np.where(m == 2, 1, m).astype(np.int8))
    images = pd.read_parquet(tmp_path / "join/images.parquet")
    images.assign(row=images["row"][::-1].to_numpy()).to_parquet(tmp_path / "join/images.parquet")
    with pytest.raises(MedslipError, match="point at another study's row"):
        load_tables(tmp_path / "join", reports, "unmentioned")
    assert load_report_labels(reports).ids == list(REPORTS)


# Models: model.json and model.safetensors are bound by a hash in the weights' metadata.
def _run(tmp_path) -> tuple:
    run = tmp_path / "run"
    run.mkdir()
    model = torch.nn.Linear(3, 2)
    meta = {"variant": "medslip", "seed": 0, "model": {"image_size": 64, "mask_activation": "none"}}
    save_final(run, model, meta)
    return run, model, meta


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda m: m["model"].update(mask_activation="sigmoid"), id="activation"),
        pytest.param(lambda m: m["model"].update(image_size=32), id="image-size"),
        pytest.param(lambda m: m.update(seed=1), id="seed"),
    ],
)
def test_edited_model_json_is_refused_naming_both_files(tmp_path, edit):
    run, _, meta = _run(tmp_path)
    assert read_run_meta(run) == meta
    edit(meta)
    (run / RUN_FILES["meta"]).write_text(json.dumps(meta, indent=1))
    weights, described = run / RUN_FILES["weights"], run / RUN_FILES["meta"]
    with pytest.raises(MedslipError) as err:
        load_pretrained(run, tmp_path / "books.safetensors")  # refused before the books
    assert str(weights) in str(err.value) and str(described) in str(err.value)
    assert "\n" not in str(err.value)


def test_run_of_an_older_medslip_without_new_model_settings_is_refused(tmp_path):
    run, _, _ = _run(tmp_path)  # model.json has two of the model settings
    with pytest.raises(MedslipError, match=r"no model settings \[.*'memory_norm'.*rerun"):
        load_pretrained(run, tmp_path / "books.safetensors")  # refused before the books


def test_run_of_a_newer_medslip_with_unknown_model_settings_is_refused(tmp_path):
    from medslip.config import defaults
    from medslip.settings import ModelSettings

    settings = ModelSettings.from_config(defaults(), "medslip").to_dict()
    run = tmp_path / "run"
    run.mkdir()
    meta = {"variant": "medslip", "seed": 0, "model": {**settings, "patch_dropout": 0.1}}
    save_final(run, torch.nn.Linear(3, 2), meta)
    with pytest.raises(MedslipError, match=r"settings \['patch_dropout'\] .*newer medslip"):
        load_pretrained(run, tmp_path / "books.safetensors")  # refused before the books


def test_model_json_of_another_run_is_refused(tmp_path):
    run, _, _ = _run(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    save_final(other, torch.nn.Linear(3, 2), {"variant": "medklip", "seed": 0, "model": {}})
    (run / RUN_FILES["meta"]).write_bytes((other / RUN_FILES["meta"]).read_bytes())
    with pytest.raises(MedslipError, match="not the description"):
        read_run_meta(run)


def test_older_run_without_the_hash_gets_a_clear_message(tmp_path):
    run, model, _ = _run(tmp_path)
    save_model(model, str(run / RUN_FILES["weights"]))  # how runs were saved before
    with pytest.raises(MedslipError, match="saved without the hash .* rerun the run's pretraining"):
        read_run_meta(run)
    (run / RUN_FILES["weights"]).unlink()
    with pytest.raises(MedslipError, match="model.safetensors: missing"):
        read_run_meta(run)


def test_safetensors_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        run, _, _ = _run(tmp_path)
    finally:
        os.umask(old)
    for name in ("weights", "meta"):
        assert stat.S_IMODE((run / RUN_FILES[name]).stat().st_mode) == 0o644, name


def test_text_books_with_nan_are_refused_and_follow_the_umask(tmp_path):
    from medslip.model import text_books as text

    rows = {"pathology": 75, "anatomy": 51}
    tensors = {k: torch.randn(rows[k.removesuffix("_eval")], 8) for k in text.BOOK_KEYS}
    tensors["anatomy"][3, 2] = float("nan")
    meta = {"books_sha256": text.books_sha256(tensors), "dim": 8}
    path = tmp_path / "books.safetensors"
    old = os.umask(0o022)
    try:
        text.save_books(text.TextBooks(**tensors, dim=8, meta=meta), path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    with pytest.raises(MedslipError, match="anatomy holds NaN or infinite values"):
        text.load_books(path)
