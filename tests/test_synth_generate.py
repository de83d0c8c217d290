"""`medslip.synth.generate`: deterministic, complete, and consistent with its own ground truth."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from medslip.rle import decode_siim
from medslip.synth import generate
from medslip.synth.generator import NIH_BOX_CLASSES
from medslip.synth.report_templates import anchor_entities
from medslip.synth.spec import FINDING_KINDS

CONFIG = {
    "synthcxr": {
        "seed": 5,
        "image_size": 96,
        "mimic_patients": 10,
        "mimic_max_studies_per_patient": 2,
        "nih_images": 14,
        "rsna_images": 12,
        "siim_images": 16,
    }
}


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate(CONFIG, out)
    return out


def _truth(synth, name):
    g = synth / "ground_truth" / name
    return pd.read_parquet(g / "images.parquet"), pd.read_parquet(g / "findings.parquet")


def test_same_config_gives_identical_bytes(synth, tmp_path):
    generate(CONFIG, tmp_path, ["siim_acr", "mimic_cxr_jpg"])
    for name in ("siim_acr", "mimic_cxr_jpg"):
        assert _digest(tmp_path / name) == _digest(synth / name)
        assert _digest(tmp_path / "ground_truth" / name) == _digest(synth / "ground_truth" / name)


def test_no_temporary_directories_left(synth):
    assert not [p for p in synth.rglob(".*tmp*")]


def test_every_image_in_ground_truth_is_on_disk_at_config_size(synth):
    for name in ("mimic_cxr_jpg", "nih_cxr14", "rsna_pneumonia", "siim_acr"):
        images, _ = _truth(synth, name)
        assert len(images) > 0
        for path in images["path"]:
            matches = (
                [synth / name / path] if "/" in path else list((synth / name).rglob(f"{path}.dcm"))
            )
            assert len(matches) == 1 and matches[0].is_file(), (name, path)
            if matches[0].suffix == ".dcm":
                assert pydicom.dcmread(matches[0]).pixel_array.shape == (96, 96)
            else:
                assert Image.open(matches[0]).size == (96, 96)
    mimic, _ = _truth(synth, "mimic_cxr_jpg")
    assert mimic["patient_id"].nunique() == 10


def test_siim_rle_decodes_to_the_pneumothorax_ground_truth(synth):
    rle = pd.read_csv(synth / "siim_acr" / "train-rle.csv")
    rle.columns = [c.strip() for c in rle.columns]
    images, findings = _truth(synth, "siim_acr")
    assert (findings["kind"] == "pneumothorax").any()
    for image_id in images["image_id"]:
        got = decode_siim(rle.loc[rle["ImageId"] == image_id, "EncodedPixels"], 96, 96)
        want = np.zeros((96, 96), bool)
        for f in findings[
            (findings["image_id"] == image_id) & (findings["kind"] == "pneumothorax")
        ].itertuples():
            want |= decode_siim(f.mask_rle, 96, 96)
        assert np.array_equal(got, want), image_id


def test_nih_labels_match_what_was_drawn(synth):
    entry = pd.read_csv(synth / "nih_cxr14" / "Data_Entry_2017_v2020.csv").set_index("Image Index")
    images, findings = _truth(synth, "nih_cxr14")
    drawn = findings.groupby("image_id")["kind"].agg(set)
    for image_id in images["image_id"]:
        labels = entry.loc[image_id, "Finding Labels"]
        kinds = drawn.get(image_id, set())
        want = sorted({FINDING_KINDS[k].nih for k in kinds} - {None}) or ["No Finding"]
        assert sorted(labels.split("|")) == want


@pytest.mark.parametrize("seed", [1, 2])
def test_nih_boxes_are_the_drawn_findings_of_test_patients(tmp_path, seed):
    """Every test patient's box-class finding that was drawn gets a non-empty box in the image."""
    config = {"synthcxr": {**CONFIG["synthcxr"], "seed": seed, "nih_images": 60}}
    config["synthcxr"]["nih_test_fraction"] = 1.0
    generate(config, tmp_path, ["nih_cxr14"])
    boxes = pd.read_csv(tmp_path / "nih_cxr14" / "BBox_List_2017.csv").iloc[:, :6]
    boxes.columns = ["image", "label", "x", "y", "w", "h"]
    assert len(boxes) > 5
    assert ((boxes["w"] > 0) & (boxes["h"] > 0)).all()
    assert ((boxes["x"] + boxes["w"] <= 96) & (boxes["y"] + boxes["h"] <= 96)).all()
    _, findings = _truth(tmp_path, "nih_cxr14")
    drawn = findings[
        findings["kind"].map(lambda k: FINDING_KINDS[k].nih in NIH_BOX_CLASSES)
        & (findings["area"] > 0)
    ]
    assert len(boxes) == len(drawn)


def test_rsna_targets_are_the_drawn_pneumonia(synth):
    labels = pd.read_csv(synth / "rsna_pneumonia" / "stage_2_train_labels.csv")
    images, findings = _truth(synth, "rsna_pneumonia")
    opac = findings[findings["kind"].isin(["pneumonia", "consolidation"]) & ~findings["uncertain"]]
    positive = set(labels.loc[labels["Target"] == 1, "patientId"])
    assert positive == set(opac["image_id"])
    for f in opac.itertuples():
        box = labels[(labels["patientId"] == f.image_id)][["x", "y", "width", "height"]].to_numpy()
        assert any(np.allclose(b, [f.x, f.y, f.w, f.h]) for b in box)


def test_mimic_reports_state_every_drawn_finding(synth):
    _, findings = _truth(synth, "mimic_cxr_jpg")
    images, _ = _truth(synth, "mimic_cxr_jpg")
    triplets = pd.read_parquet(synth / "ground_truth" / "mimic_cxr_jpg" / "triplets.parquet")
    studies = pd.read_parquet(synth / "ground_truth" / "mimic_cxr_jpg" / "studies.parquet")
    study_of = dict(zip(images["image_id"], images["study_id"], strict=True))
    for f in findings.itertuples():
        t = triplets[triplets["study_id"] == study_of[f.image_id]]
        stated = t[t["pathology"].isin(anchor_entities(f.kind))]
        want = "uncertain" if f.uncertain else "present"
        assert (stated["presence"] == want).any(), (f.kind, f.landmark)
    for s in studies.itertuples():
        assert "FINDINGS" in s.report or "IMPRESSION" in s.report
        files = list((synth / "mimic_cxr_jpg" / "files").rglob(f"s{s.study_id}.txt"))
        assert len(files) == 1 and files[0].read_text() == s.report


def test_cli_generates_one_dataset(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("synthcxr: {image_size: 64, siim_images: 3}\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "medslip.cli",
            "synth",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "o"),
            "--dataset",
            "siim_acr",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o" / "siim_acr" / "train-rle.csv").is_file()
    assert not (tmp_path / "o" / "nih_cxr14").exists()


def test_pa_studies_have_a_lateral_and_reports_say_so(synth):
    meta = pd.read_csv(
        synth / "mimic_cxr_jpg" / "mimic-cxr-2.0.0-metadata.csv.gz", dtype={"study_id": str}
    )
    views = meta.groupby("study_id")["ViewPosition"].apply(set)
    images, findings = _truth(synth, "mimic_cxr_jpg")
    studies = pd.read_parquet(synth / "ground_truth" / "mimic_cxr_jpg" / "studies.parquet")
    assert studies["study_id"].map(type).eq(str).all()  # one spelling: the manifest's digits
    for s in studies.itertuples():
        assert views[s.study_id] == ({"PA", "LATERAL"} if s.view == "PA" else {"AP"})
        claims_lateral = re.search(r"and lat\)|lateral views?", s.report.lower()) is not None
        assert not claims_lateral or s.view == "PA"
    lateral_ids = set(images.loc[images["view"] == "LATERAL", "image_id"])
    assert lateral_ids and not lateral_ids & set(findings["image_id"])  # masks on frontals only
