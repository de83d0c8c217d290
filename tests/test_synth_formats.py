"""SynthCXR's official-format writers, checked against the real releases in ../shared/data/real."""

from __future__ import annotations

import gzip
import math
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from PIL import Image

from medslip.errors import MedslipError
from medslip.rle import decode_siim
from medslip.synth.formats import (
    MimicCxrJpgWriter,
    NihCxr14Writer,
    RsnaPneumoniaWriter,
    SiimAcrWriter,
)
from medslip.vocab import CHESTXRAY14_CLASSES

SIZE = 64
SIIM_IMAGE_ID = re.compile(
    r"^1\.2\.276\.0\.7230010\.3\.1\.4\.8323329\.\d{3,5}\.\d{10}\.[1-9]\d{2,5}$"
)
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
NIH_INDEX = re.compile(r"^\d{8}_\d{3}\.png$")


def _first_line(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return f.readline()


def _phantom(rng: np.random.Generator, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    """Smooth (H, W) uint8 image with a bright blob, so a lossy JPEG keeps it recognisable."""
    ys, xs = np.mgrid[0:height, 0:width]
    cy, cx = rng.uniform(0.3, 0.7, size=2) * (height, width)
    blob = 120 * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (0.05 * height * width))
    return np.clip(40 + 60 * xs / width + blob, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def real_siim_dicom(real_data) -> pydicom.Dataset:
    (path,) = (real_data / "siim_acr_pneumothorax" / "dicom").glob("*.dcm")
    return pydicom.dcmread(path)


# ---------------------------------------------------------------------------------- MIMIC


def test_mimic_tree_metadata_and_labels(tmp_path):
    rng = np.random.default_rng(1)
    writer = MimicCxrJpgWriter(tmp_path)
    frontal, lateral = _phantom(rng, 80, 64), _phantom(rng, 80, 64)  # H != W: Rows vs Columns
    ids = [
        "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014",
        "174413ec-4ec4c1f7-34ea26b7-c5f994f8-79ef1962",
        "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab",
    ]
    paths = writer.add_study(
        10000032,
        50414267,
        "FINDINGS: No effusion.\nIMPRESSION: Normal.",
        {"No Finding": 1.0, "Pleural Effusion": 0.0, "Edema": float("nan")},
        [(ids[0], frontal, "PA"), (ids[1], lateral, "LATERAL")],
        datetime(2180, 5, 6, 21, 30, 14, 531000),
    )
    paths += writer.add_study(
        12345678,
        53189527,
        "FINDINGS: Possible left basal opacity.",
        {"Pneumonia": -1.0, "Support Devices": 1.0},
        [(ids[2], _phantom(rng), "AP")],
        datetime(2150, 1, 2, 8, 5, 56),
    )
    writer.close({10000032: "train", 12345678: "test"})

    study_dir = re.compile(r"^files/p(\d\d)/p(\d{8})/s\d{8}/[0-9a-f]{8}(-[0-9a-f]{8}){4}\.jpg$")
    for rel in paths:
        match = study_dir.match(rel)
        assert match and match[2].startswith(match[1])
    assert paths[0] == f"files/p10/p10000032/s50414267/{ids[0]}.jpg"
    assert (tmp_path / "files/p10/p10000032/s50414267.txt").read_text().startswith("FINDINGS:")
    assert (tmp_path / "files/p12/p12345678/s53189527.txt").is_file()

    metadata = pd.read_csv(tmp_path / "mimic-cxr-2.0.0-metadata.csv.gz")
    assert list(metadata.columns) == [
        "dicom_id",
        "subject_id",
        "study_id",
        "PerformedProcedureStepDescription",
        "ViewPosition",
        "Rows",
        "Columns",
        "StudyDate",
        "StudyTime",
        "ProcedureCodeSequence_CodeMeaning",
        "ViewCodeSequence_CodeMeaning",
        "PatientOrientationCodeSequence_CodeMeaning",
    ]
    for row in metadata.itertuples():
        (rel,) = [p for p in paths if row.dicom_id in p]
        with Image.open(tmp_path / rel) as image:
            assert image.mode == "L" and image.format == "JPEG"
            assert (row.Columns, row.Rows) == image.size
    first = metadata.set_index("dicom_id").loc[ids[0]]
    assert (first.Rows, first.Columns, first.StudyDate, first.StudyTime) == (
        80,
        64,
        21800506,
        213014.531,
    )
    assert first.ViewCodeSequence_CodeMeaning == "postero-anterior"
    with Image.open(tmp_path / paths[0]) as image:
        assert np.abs(np.asarray(image, dtype=int) - frontal).mean() < 2  # the pixels, upright

    split = pd.read_csv(tmp_path / "mimic-cxr-2.0.0-split.csv.gz")
    assert list(split.columns) == ["dicom_id", "study_id", "subject_id", "split"]
    assert dict(zip(split.dicom_id, split.split, strict=True)) == {
        ids[0]: "train",
        ids[1]: "train",
        ids[2]: "test",
    }

    chexpert = pd.read_csv(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz")
    assert list(chexpert.columns) == [
        "subject_id",
        "study_id",
        "Atelectasis",
        "Cardiomegaly",
        "Consolidation",
        "Edema",
        "Enlarged Cardiomediastinum",
        "Fracture",
        "Lung Lesion",
        "Lung Opacity",
        "No Finding",
        "Pleural Effusion",
        "Pleural Other",
        "Pneumonia",
        "Pneumothorax",
        "Support Devices",
    ]
    study = chexpert.set_index("study_id")
    assert study.loc[50414267, "No Finding"] == 1.0
    assert study.loc[50414267, "Pleural Effusion"] == 0.0
    assert math.isnan(study.loc[50414267, "Edema"])
    assert study.loc[53189527, "Pneumonia"] == -1.0
    assert study.loc[53189527, "subject_id"] == 12345678


def test_mimic_rejects_bad_ids_and_missing_split(tmp_path):
    writer = MimicCxrJpgWriter(tmp_path)
    image = np.zeros((8, 8), np.uint8)
    when = datetime(2150, 1, 1)
    with pytest.raises(MedslipError, match="dicom_id"):
        writer.add_study(10000001, 50000001, "x", {}, [("1234", image, "PA")], when)
    with pytest.raises(MedslipError, match="CheXpert"):
        writer.add_study(10000001, 50000001, "x", {"Flu": 1.0}, [], when)
    writer.add_study(10000001, 50000002, "x", {}, [("0" * 8 + "-00000000" * 4, image, "PA")], when)
    with pytest.raises(MedslipError, match="no split"):
        writer.close({})
    assert not (tmp_path / "mimic-cxr-2.0.0-metadata.csv.gz").exists()


# ---------------------------------------------------------------------------------- NIH


def test_nih_files_match_the_real_release(tmp_path, real_data):
    real = real_data / "nih_chestxray14"
    rng = np.random.default_rng(2)
    writer = NihCxr14Writer(tmp_path)
    images = {}
    boxes = {
        (1, 0): [("Cardiomegaly", 20.25, 30.5, 24.0, 18.75)],
        (1, 1): [("Infiltration", 0.0, 0.0, SIZE, SIZE), ("Mass", 40.0, 5.5, 10.0, 12.0)],
    }
    labels = {(1, 0): ["Cardiomegaly"], (1, 1): ["Mass", "Infiltration"], (2, 0): []}
    for (patient, follow_up), names in labels.items():
        pixels = _phantom(rng)
        index = writer.add(
            patient, follow_up, pixels, names, "PA", 57, "M", boxes.get((patient, follow_up), [])
        )
        images[index] = pixels
    writer.close(test_patients={2})

    written_entry = tmp_path / "Data_Entry_2017_v2020.csv"
    assert _first_line(written_entry) == _first_line(real / "Data_Entry_2017_v2020.csv.gz")
    assert _first_line(tmp_path / "BBox_List_2017.csv") == _first_line(real / "BBox_List_2017.csv")
    real_entries = pd.read_csv(real / "Data_Entry_2017_v2020.csv.gz", nrows=200)
    entries = pd.read_csv(written_entry)
    assert list(entries.columns) == list(real_entries.columns)
    assert [t.kind for t in entries.dtypes] == [t.kind for t in real_entries.dtypes]
    assert real_entries["Image Index"].str.match(NIH_INDEX).all()
    assert list(entries["Image Index"]) == [
        "00000001_000.png",
        "00000001_001.png",
        "00000002_000.png",
    ]
    assert list(entries["Finding Labels"]) == ["Cardiomegaly", "Infiltration|Mass", "No Finding"]
    for labels_field in entries["Finding Labels"]:
        assert set(labels_field.split("|")) <= {*CHESTXRAY14_CLASSES, "No Finding"}

    real_boxes = pd.read_csv(real / "BBox_List_2017.csv")
    written_boxes = pd.read_csv(tmp_path / "BBox_List_2017.csv")
    assert list(written_boxes.columns) == list(real_boxes.columns)
    assert set(written_boxes["Finding Label"]) <= set(real_boxes["Finding Label"])
    assert len(written_boxes) == 3
    for row in written_boxes.itertuples(index=False):
        x, y, w, h = row[2:6]
        with Image.open(tmp_path / "images" / row[0]) as image:
            width, height = image.size
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height
    assert written_boxes.iloc[:, 2:6].values.tolist()[0] == [20.25, 30.5, 24.0, 18.75]

    for index, pixels in images.items():
        with Image.open(tmp_path / "images" / index) as image:
            assert image.mode == "L" and image.format == "PNG"
            assert np.array_equal(np.asarray(image), pixels)  # lossless, upright
    assert (tmp_path / "train_val_list.txt").read_text().split() == [
        "00000001_000.png",
        "00000001_001.png",
    ]
    assert (tmp_path / "test_list.txt").read_text().split() == ["00000002_000.png"]


def test_nih_rejects_boxes_outside_the_image(tmp_path):
    writer = NihCxr14Writer(tmp_path)
    with pytest.raises(MedslipError, match="outside"):
        writer.add(
            1,
            0,
            np.zeros((SIZE, SIZE), np.uint8),
            ["Mass"],
            "PA",
            50,
            "F",
            [("Mass", 50.0, 50.0, 20.0, 5.0)],
        )
    assert not (tmp_path / "images").exists()


# ---------------------------------------------------------------------------------- DICOMs

SAME_AS_REAL = (
    "SOPClassUID",
    "Modality",
    "ConversionType",
    "BodyPartExamined",
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "StudyDate",
    "SpecificCharacterSet",
)


def _check_dicom_like_real(ds: pydicom.Dataset, real: pydicom.Dataset, pixels: np.ndarray) -> None:
    assert {e.keyword for e in ds} == {e.keyword for e in real}  # the same attribute set
    for keyword in SAME_AS_REAL:
        assert ds[keyword].VR == real[keyword].VR
        assert ds[keyword].value == real[keyword].value, keyword
    assert ds.file_meta.TransferSyntaxUID == real.file_meta.TransferSyntaxUID
    assert (ds.Rows, ds.Columns) == pixels.shape
    assert ds.SeriesDescription == f"view: {ds.ViewPosition}"
    decoded = ds.pixel_array
    assert decoded.dtype == np.uint8 and decoded.shape == pixels.shape
    assert np.abs(decoded.astype(int) - pixels).mean() < 2


def test_rsna_files_match_the_real_release(tmp_path, real_data, real_siim_dicom):
    real = real_data / "rsna_pneumonia"
    rng = np.random.default_rng(3)
    writer = RsnaPneumoniaWriter(tmp_path)
    cases = [
        ([(10.4, 12.0, 20.0, 30.6), (40.0, 8.0, 16.0, 40.0)], True, False, "AP"),
        ([], False, True, "PA"),
        ([], False, False, "PA"),
    ]
    written = {}
    for boxes, opacity, other, view in cases:
        pixels = _phantom(rng)
        written[writer.add(pixels, view, 43, "F", boxes, opacity, other, rng)] = (pixels, view)
    writer.close()

    labels_path = tmp_path / "stage_2_train_labels.csv"
    assert _first_line(labels_path) == _first_line(real / "stage_2_train_labels.csv")
    real_labels = pd.read_csv(real / "stage_2_train_labels.csv", nrows=2000)
    labels = pd.read_csv(labels_path)
    assert list(labels.columns) == list(real_labels.columns)
    assert real_labels.patientId.str.match(UUID4).all()
    assert labels.patientId.str.match(UUID4).all()
    assert [t.kind for t in labels.dtypes] == [t.kind for t in real_labels.dtypes]
    # the same line styles: "264.0,152.0,..." for a box, ",,,,,0" for a negative
    real_lines = (real / "stage_2_train_labels.csv").read_text().splitlines()[1:2000]
    line_style = re.compile(r"^[0-9a-f-]{36},((\d+\.0,){4}1|,,,,0)$")
    assert all(line_style.match(line) for line in real_lines)
    lines = labels_path.read_text().splitlines()[1:]
    assert len(lines) == 4 and all(line_style.match(line) for line in lines)
    positive = labels[labels.Target == 1]
    assert positive[["x", "y", "width", "height"]].values.tolist() == [
        [10.0, 12.0, 20.0, 31.0],
        [40.0, 8.0, 16.0, 40.0],
    ]
    assert ((positive.x + positive.width <= SIZE) & (positive.y + positive.height <= SIZE)).all()

    classes = pd.read_csv(tmp_path / "stage_2_detailed_class_info.csv")
    assert list(classes.columns) == ["patientId", "class"]
    assert list(classes.patientId) == list(labels.patientId)
    assert list(classes["class"]) == [
        "Lung Opacity",
        "Lung Opacity",
        "No Lung Opacity / Not Normal",
        "Normal",
    ]

    header_columns = pd.read_csv(
        real / "kaggle_stage_2_train_images_dicom_headers.csv.gz", nrows=1
    ).columns
    for patient_id, (pixels, view) in written.items():
        ds = pydicom.dcmread(tmp_path / "stage_2_train_images" / f"{patient_id}.dcm")
        _check_dicom_like_real(ds, real_siim_dicom, pixels)
        for column in header_columns:  # every attribute the real RSNA header table has
            if column not in ("Unnamed: 0", "Filename"):
                assert column in ds, column
        assert ds.PatientID == patient_id and ds.ViewPosition == view
        assert (ds.PatientSex, ds.PatientAge) == ("F", "43")


def test_siim_files_match_the_real_release(tmp_path, real_data, real_siim_dicom):
    real_rle = real_data / "siim_acr_pneumothorax" / "siim-pneumothorax-train-rle.csv.gz"
    rng = np.random.default_rng(4)
    two_parts = np.zeros((SIZE, SIZE), bool)
    two_parts[5:40, 2:9] = True  # a lateral stripe...
    two_parts[3:6, 50:60] = True  # ...and an apical one: two components, two rows
    one_part = np.zeros((SIZE, SIZE), bool)
    one_part[SIZE - 10 :, SIZE - 3 :] = True  # touches the last pixel
    masks = [two_parts, None, one_part, np.zeros((SIZE, SIZE), bool)]
    writer = SiimAcrWriter(tmp_path)
    written = {}
    for mask in masks:
        pixels = _phantom(rng)
        written[writer.add(pixels, mask, "PA", 62, "M", rng)] = (pixels, mask)
    writer.close()

    rle_path = tmp_path / "train-rle.csv"
    assert _first_line(rle_path) == _first_line(real_rle)
    real = pd.read_csv(real_rle)
    table = pd.read_csv(rle_path)
    assert list(table.columns) == list(real.columns)
    assert real.ImageId.str.match(SIIM_IMAGE_ID).all()
    assert table.ImageId.str.match(SIIM_IMAGE_ID).all()
    assert list(table.ImageId.value_counts()[list(written)]) == [2, 1, 1, 1]
    rle_column = table.columns[1]
    for image_id, (pixels, mask) in written.items():
        rles = table.loc[table.ImageId == image_id, rle_column]
        expected = np.zeros((SIZE, SIZE), bool) if mask is None else mask
        assert np.array_equal(decode_siim(rles, SIZE, SIZE), expected)
        if not expected.any():
            assert list(rles) == ["-1"]
        (path,) = tmp_path.glob(f"dicom-images-train/*/*/{image_id}.dcm")
        ds = pydicom.dcmread(path)
        _check_dicom_like_real(ds, real_siim_dicom, pixels)
        assert path.parent.name == ds.SeriesInstanceUID and path.parent.parent.name == (
            ds.StudyInstanceUID
        )
        assert ds.SOPInstanceUID == image_id == ds.file_meta.MediaStorageSOPInstanceUID
        assert UUID4.match(ds.PatientID) and ds.PatientName == ds.PatientID
        assert (ds.ViewPosition, ds.PatientSex, ds.PatientAge) == ("PA", "M", "62")


def test_siim_rejects_a_mask_of_the_wrong_size(tmp_path):
    writer = SiimAcrWriter(tmp_path)
    with pytest.raises(MedslipError, match="mask shape"):
        writer.add(
            np.zeros((SIZE, SIZE), np.uint8),
            np.ones((SIZE, SIZE + 1), bool),
            "PA",
            40,
            "F",
            np.random.default_rng(0),
        )
    with pytest.raises(MedslipError, match="view"):
        writer.add(np.zeros((SIZE, SIZE), np.uint8), None, "LL", 40, "F", np.random.default_rng(0))
