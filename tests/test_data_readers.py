"""Readers of the official formats into the manifest schema, on fake trees built from the real
public files in ../shared/data/real (torchxrayvision style) and on the real trees themselves."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from medslip.data.manifest import COLUMNS, read_manifest, write_manifest
from medslip.data.readers import read_dataset
from medslip.errors import MedslipError
from medslip.rle import decode_siim

SIIM_NEGATIVE = "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819"
SIIM_POSITIVE = "1.2.276.0.7230010.3.1.4.8323329.5073.1517875186.287848"
NIH_IMAGES = ["00000001_000", "00000001_001", "00000002_000", "00000003_000"]


def build_nih(real: Path, root: Path) -> Path:
    """NIH tree: 4 real PNGs, their Data_Entry rows, split lists, one box for a present image."""
    (root / "images").mkdir(parents=True)
    for name in NIH_IMAGES:
        shutil.copy(real / "nih_chestxray14/images" / f"{name}.png", root / "images")
    entries = pd.read_csv(real / "nih_chestxray14/Data_Entry_2017_v2020.csv.gz")
    entries = entries[entries["Image Index"].isin([f"{n}.png" for n in NIH_IMAGES])]
    entries.to_csv(root / "Data_Entry_2017_v2020.csv", index=False)
    (root / "train_val_list.txt").write_text("00000001_000.png\n00000001_001.png\n")
    (root / "test_list.txt").write_text("00000002_000.png\n00000003_000.png\n")
    boxes = (real / "nih_chestxray14/BBox_List_2017.csv").read_text().splitlines()[:3]
    boxes.append("00000002_000.png,Infiltrate,100.0,200.0,300.0,400.0")
    (root / "BBox_List_2017.csv").write_text("\n".join(boxes) + "\n")
    return root


def build_siim(real: Path, root: Path) -> Path:
    """SIIM tree: the real DICOM under its own id (negative) and under a positive id whose real
    RLE rows (8 components) are kept, plus a CSV row whose DICOM is missing."""
    rle = pd.read_csv(real / "siim_acr_pneumothorax/siim-pneumothorax-train-rle.csv.gz", dtype=str)
    rle.columns = [c.strip() for c in rle.columns]
    missing = "1.2.276.0.7230010.3.1.4.8323329.1851.1517875169.919023"
    rows = rle[rle["ImageId"].isin([SIIM_NEGATIVE, SIIM_POSITIVE, missing])]
    dicom = real / "siim_acr_pneumothorax/dicom" / f"{SIIM_NEGATIVE}.dcm"
    for image_id in (SIIM_NEGATIVE, SIIM_POSITIVE):
        folder = root / "dicom-images-train" / f"study{image_id[-4:]}" / "series"
        folder.mkdir(parents=True)
        shutil.copy(dicom, folder / f"{image_id}.dcm")
    rows.to_csv(root / "train-rle.csv", index=False, header=["ImageId", " EncodedPixels"])
    return root


def build_rsna(real: Path, root: Path, n: int = 6) -> Path:
    """RSNA tree: the first patients of the real labels (positives included), each with a copy
    of the real SIIM DICOM as its image."""
    labels = pd.read_csv(real / "rsna_pneumonia/stage_2_train_labels.csv")
    positives = labels[labels["Target"] == 1]["patientId"].unique()[:2]
    negatives = labels[labels["Target"] == 0]["patientId"].unique()[: n - 2]
    keep = labels[labels["patientId"].isin([*positives, *negatives])]
    (root / "stage_2_train_images").mkdir(parents=True)
    keep.to_csv(root / "stage_2_train_labels.csv", index=False)
    detail = keep[["patientId"]].assign(
        **{"class": ["Lung Opacity" if t else "Normal" for t in keep["Target"]]}
    )
    detail.to_csv(root / "stage_2_detailed_class_info.csv", index=False)
    dicom = real / "siim_acr_pneumothorax/dicom" / f"{SIIM_NEGATIVE}.dcm"
    for pid in keep["patientId"].unique():
        shutil.copy(dicom, root / "stage_2_train_images" / f"{pid}.dcm")
    return root


def build_mimic(real: Path, root: Path, gz: bool = True) -> Path:
    """MIMIC-CXR-JPG tree: 3 studies of 2 subjects, the lung_seg_demo JPEGs as images, one
    lateral, the official CSVs (gzipped or plain) and report files."""
    images = [  # dicom_id, subject, study, view, split, demo image
        ("a" * 8 + "-" + "1" * 8, 10000032, 50414267, "PA", "train", "1.jpg"),
        ("b" * 8 + "-" + "2" * 8, 10000032, 50414267, "LATERAL", "train", "2.jpg"),
        ("c" * 8 + "-" + "3" * 8, 10000032, 53189527, "AP", "train", "3.jpg"),
        ("d" * 8 + "-" + "4" * 8, 10000764, 57375967, "PA", "validate", "4.jpg"),
    ]
    meta, split = [], []
    for dicom, subject, study, view, part, demo in images:
        folder = root / f"files/p{str(subject)[:2]}/p{subject}/s{study}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(real / "lung_seg_demo_imlab/Data" / demo, folder / f"{dicom}.jpg")
        (folder.parent / f"s{study}.txt").write_text("FINDINGS: clear.\nIMPRESSION: normal.\n")
        meta.append([dicom, subject, study, view, 512, 512])
        split.append([dicom, study, subject, part])
    chexpert = [
        [10000032, 50414267, 1.0, None],
        [10000032, 53189527, -1.0, 0.0],
        [10000764, 57375967, None, 1.0],
    ]
    tables = {
        "metadata": pd.DataFrame(
            meta, columns=["dicom_id", "subject_id", "study_id", "ViewPosition", "Rows", "Columns"]
        ),
        "split": pd.DataFrame(split, columns=["dicom_id", "study_id", "subject_id", "split"]),
        "chexpert": pd.DataFrame(
            chexpert, columns=["subject_id", "study_id", "Cardiomegaly", "Edema"]
        ),
    }
    for name, frame in tables.items():
        path = root / f"mimic-cxr-2.0.0-{name}.csv"
        frame.to_csv(path, index=False)
        if gz:
            path.with_suffix(".csv.gz").write_bytes(gzip.compress(path.read_bytes()))
            path.unlink()
    return root


def test_mimic_reader_views_split_labels_reports(real_data, tmp_path):
    for gz in (True, False):
        root = build_mimic(real_data, tmp_path / f"mimic{gz}", gz=gz)
        m = read_dataset("mimic_cxr_jpg", root, views=["PA", "AP"]).set_index("image_id")
        assert len(m) == 3  # the lateral is filtered out by default
        assert set(m["split"]) == {"train", "val"}
        row = m.loc["c" * 8 + "-" + "3" * 8]
        assert json.loads(row["labels"]) == {"Cardiomegaly": -1.0, "Edema": 0.0}
        assert (root / row["path"]).is_file() and (root / row["report"]).is_file()
        assert row["patient_id"] == "10000032" and row["study_id"] == "53189527"
    assert len(read_dataset("mimic_cxr_jpg", root, views=None)) == 4


def test_nih_reader_official_split_labels_boxes(real_data, tmp_path):
    root = build_nih(real_data, tmp_path / "nih")
    m = read_dataset("nih_cxr14", root).set_index("image_id")
    assert list(m.index) == NIH_IMAGES
    assert m.loc["00000001_000", "split"] == "train" and m.loc["00000002_000", "split"] == "test"
    labels = json.loads(m.loc["00000001_000", "labels"])
    assert labels["Cardiomegaly"] == 1.0 and sum(labels.values()) == 1.0 and len(labels) == 14
    assert json.loads(m.loc["00000002_000", "boxes"]) == [["Infiltration", 100, 200, 300, 400]]
    assert all((root / p).is_file() for p in m["path"])


def test_nih_reader_rejects_image_in_no_split_list(real_data, tmp_path):
    root = build_nih(real_data, tmp_path / "nih")
    (root / "test_list.txt").write_text("00000002_000.png\n")
    with pytest.raises(MedslipError, match="in no split list"):
        read_dataset("nih_cxr14", root)


def test_siim_reader_groups_rle_rows_and_reads_headers(real_data, tmp_path):
    root = build_siim(real_data, tmp_path / "siim")
    m = read_dataset("siim_acr", root).set_index("image_id")
    assert len(m) == 3
    positive = m.loc[SIIM_POSITIVE]
    assert len(positive["mask_rle"]) == 8 and json.loads(positive["labels"]) == {
        "Pneumothorax": 1.0
    }
    assert (positive["width"], positive["height"]) == (1024, 1024)
    assert decode_siim(positive["mask_rle"], 1024, 1024).sum() > 1000
    assert len(m.loc[SIIM_NEGATIVE, "mask_rle"]) == 0 and m.loc[SIIM_NEGATIVE, "view"] == "PA"
    assert m.loc["1.2.276.0.7230010.3.1.4.8323329.1851.1517875169.919023", "path"] == ""


def test_rsna_reader_boxes_per_patient(real_data, tmp_path):
    root = build_rsna(real_data, tmp_path / "rsna")
    m = read_dataset("rsna_pneumonia", root)
    labels = pd.read_csv(root / "stage_2_train_labels.csv")
    assert len(m) == labels["patientId"].nunique() == 6
    n_boxes = m["boxes"].map(lambda b: len(json.loads(b)))
    assert n_boxes.sum() == labels["x"].notna().sum()
    positive = m[n_boxes > 0].iloc[0]
    assert json.loads(positive["labels"])["Pneumonia"] == 1.0
    assert (m["split"] == "").all()


def test_iu_and_covid_readers_on_the_real_trees(real_data):
    iu = read_dataset("iu_xray", real_data / "iu_xray")
    projections = pd.read_csv(real_data / "iu_xray/indiana_projections.csv")
    assert len(iu) == (projections["projection"] == "Frontal").sum()
    assert iu["report"].str.startswith("indiana_reports.csv#uid=").all()
    covid = read_dataset("covid_chestxray", real_data / "covid_chestxray")
    # the snapshot holds the frontal X-rays of its images_subset.txt; the reader finds exactly those
    subset = (real_data / "covid_chestxray/images_subset.txt").read_text().split()
    assert sorted(Path(p).name for p in covid["path"]) == sorted(subset)
    assert (covid["mask_path"] != "").all() and set(covid["view"]) <= {"PA", "AP", "AP Supine"}


def test_manifest_roundtrip_and_schema_check(real_data, tmp_path):
    m = read_dataset("siim_acr", build_siim(real_data, tmp_path / "siim"))
    write_manifest(m, tmp_path / "m.parquet")
    back = read_manifest(tmp_path / "m.parquet")
    assert list(back.columns) == COLUMNS and back["image_id"].tolist() == m["image_id"].tolist()
    assert [list(x) for x in back["mask_rle"]] == [list(x) for x in m["mask_rle"]]
    m.drop(columns="report").to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(MedslipError, match="bad.parquet"):
        read_manifest(tmp_path / "bad.parquet")


def test_missing_official_file_is_named(tmp_path):
    (tmp_path / "rsna").mkdir()
    with pytest.raises(MedslipError, match="stage_2_train_labels.csv"):
        read_dataset("rsna_pneumonia", tmp_path / "rsna")
