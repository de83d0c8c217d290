"""Bad input at the data stage (issue 20): official metadata tables (NIH, RSNA, SIIM, MIMIC) with
values that would mislabel or merge images, boxes checked against each image's own size, tiny
images, split files without the splits a stage needs, and nonsense shard flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medslip.cli import main
from medslip.data.manifest import make_manifest, write_manifest
from tests._cli import fails as _fails


def _manifest(dataset: str, root: Path, out: Path) -> list:
    return ["manifest", "--dataset", dataset, "--root", root, "--out", out]


# NIH ChestX-ray14
NIH_HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,View Position\n"


def _nih(root: Path, rows: list[tuple[str, str, str]]) -> Path:
    root.mkdir(parents=True)
    lines = "".join(f"{name},{labels},0,{patient},50,PA\n" for name, labels, patient in rows)
    (root / "Data_Entry_2017_v2020.csv").write_text(NIH_HEADER + lines)
    (root / "train_val_list.txt").write_text("".join(f"{r[0]}\n" for r in rows))
    (root / "test_list.txt").write_text("")
    (root / "BBox_List_2017.csv").write_text("Image Index,Finding Label,x,y,w,h\n")
    return root


def test_nih_good_table(tmp_path):
    rows = [("a.png", "Effusion|Mass", "1"), ("b.png", "No Finding", "2")]
    root, out = _nih(tmp_path / "nih", rows), tmp_path / "m.parquet"
    assert main([str(a) for a in _manifest("nih_cxr14", root, out)]) == 0
    frame = pd.read_parquet(out).set_index("image_id")
    assert json.loads(frame.loc["a", "labels"])["Mass"] == 1.0
    assert frame["patient_id"].tolist() == ["1", "2"]


@pytest.mark.parametrize(
    ("rows", "names"),
    [
        pytest.param(
            [("a.png", "Effusion", "1"), ("b.png", "3.5", "2")],
            ["row 2", "Finding Labels '3.5'"],
            id="numeric-labels",
        ),  # fmt: skip
        pytest.param([("a.png", "Effusion|Edemma", "1")], ["row 1", "Edemma"], id="misspelt"),
        pytest.param([("a.png", "", "1")], ["row 1", "Finding Labels"], id="blank-labels"),
        pytest.param([("a.png", "No Finding|Mass", "1")], ["row 1"], id="no-finding-and-mass"),
        pytest.param(
            [("a.png", "Mass", "1"), ("b.png", "Mass", "")],
            ["Patient ID is blank in row(s) 2"],
            id="blank-patient",
        ),  # fmt: skip
    ],
)
def test_nih_table_that_would_mislabel_or_merge_is_refused(tmp_path, caplog, rows, names):
    root, out = _nih(tmp_path / "nih", rows), tmp_path / "m.parquet"
    csv = root / "Data_Entry_2017_v2020.csv"
    _fails(_manifest("nih_cxr14", root, out), caplog, csv, *names)
    assert not out.exists()


# RSNA Pneumonia
def _rsna(root: Path, rows: str) -> Path:
    root.mkdir(parents=True)
    (root / "stage_2_train_labels.csv").write_text("patientId,x,y,width,height,Target\n" + rows)
    ids = sorted({line.split(",")[0] for line in rows.splitlines()})
    detail = "".join(f"{i},Lung Opacity\n" for i in ids)
    (root / "stage_2_detailed_class_info.csv").write_text("patientId,class\n" + detail)
    return root


@pytest.mark.parametrize(
    ("rows", "names"),
    [
        pytest.param("a,1,2,3,4,1\n,,,,,0\n", ["patientId is blank in row(s) 2"], id="blank-id"),
        pytest.param("a,1,2,3,4,1\nb,,,,,yes\n", ["row 2", "Target 'yes'"], id="target-yes"),
        pytest.param("a,1,2,3,4,1\nb,,,,,1\n", ["row 2", "Target 1 but no box"], id="no-box"),
        pytest.param("a,1,2,3,4,0\n", ["row 1", "a box but Target 0"], id="box-of-negative"),
        pytest.param("a,1,2,-3,4,1\n", ["row 1", "width and height must be > 0"], id="neg-width"),
    ],
)
def test_rsna_table_that_would_mislabel_is_refused(tmp_path, caplog, rows, names):
    root, out = _rsna(tmp_path / "rsna", rows), tmp_path / "m.parquet"
    _fails(_manifest("rsna_pneumonia", root, out), caplog, "stage_2_train_labels.csv", *names)
    assert not out.exists()


def test_rsna_boxes_are_kept_as_given_for_preprocessing(tmp_path):
    root = _rsna(tmp_path / "rsna", "a,2000,100,50,50,1\nb,,,,,0\n")
    out = tmp_path / "m.parquet"
    assert main([str(a) for a in _manifest("rsna_pneumonia", root, out)]) == 0
    boxes = pd.read_parquet(out).set_index("image_id")["boxes"].map(json.loads)
    assert boxes["a"] == [["Lung Opacity", 2000.0, 100.0, 50.0, 50.0]] and boxes["b"] == []


# SIIM-ACR
def test_siim_image_in_two_folders_is_refused_naming_both(tmp_path, caplog):
    root = tmp_path / "siim"
    for folder in ("dicom-images-train/s1/r1", "dicom-images-train/s2/r2"):
        (root / folder).mkdir(parents=True)
        (root / folder / "1.2.3.dcm").write_bytes(b"")
    (root / "train-rle.csv").write_text("ImageId,EncodedPixels\n1.2.3,-1\n")
    first = root / "dicom-images-train/s1/r1/1.2.3.dcm"
    second = root / "dicom-images-train/s2/r2/1.2.3.dcm"
    _fails(_manifest("siim_acr", root, tmp_path / "m.parquet"), caplog, first, second)


def test_siim_blank_image_id_is_refused(tmp_path, caplog):
    root = tmp_path / "siim"
    root.mkdir()
    (root / "train-rle.csv").write_text("ImageId,EncodedPixels\n1.2.3,-1\n ,-1\n")
    _fails(_manifest("siim_acr", root, tmp_path / "m.parquet"), caplog, "ImageId is blank", "2")


# MIMIC-CXR-JPG
def _mimic(root: Path, subject: str = "10000001", label: str = "1.0") -> Path:
    root.mkdir(parents=True)
    prefix = root / "mimic-cxr-2.0.0"
    Path(f"{prefix}-metadata.csv").write_text(
        "dicom_id,subject_id,study_id,ViewPosition,Rows,Columns\n"
        f"d1,{subject},50000001,PA,64,64\nd2,10000002,50000002,PA,64,64\n"
    )
    Path(f"{prefix}-split.csv").write_text(
        "dicom_id,study_id,subject_id,split\nd1,,,train\nd2,,,test\n"
    )
    Path(f"{prefix}-chexpert.csv").write_text(
        f"subject_id,study_id,Edema\n10000001,50000001,{label}\n10000002,50000002,\n"
    )
    return root


def test_mimic_good_tables(tmp_path):
    out = tmp_path / "m.parquet"
    assert main([str(a) for a in _manifest("mimic_cxr_jpg", _mimic(tmp_path / "m"), out)]) == 0
    assert pd.read_parquet(out)["patient_id"].tolist() == ["10000001", "10000002"]


@pytest.mark.parametrize(
    ("subject", "label", "names"),
    [
        pytest.param("", "1.0", ["metadata.csv", "subject_id is blank in row(s) 1"], id="blank"),
        pytest.param("p1", "1.0", ["metadata.csv", "row 1", "'p1'"], id="not-a-number"),
        pytest.param(
            "10000001", "2", ["chexpert.csv", "row 1", "Edema", "not 1, 0, -1"], id="label-2"
        ),  # fmt: skip
        pytest.param("10000001", "yes", ["chexpert.csv", "'yes'"], id="label-yes"),
    ],
)
def test_mimic_tables_that_would_mislabel_are_refused(tmp_path, caplog, subject, label, names):
    root = _mimic(tmp_path / "m", subject, label)
    _fails(_manifest("mimic_cxr_jpg", root, tmp_path / "m.parquet"), caplog, *names)


# Preprocessing: boxes against each image's own size, tiny images.
def _tree(root: Path, sizes: dict[str, tuple[int, int]]) -> Path:
    root.mkdir(parents=True)
    for name, (w, h) in sizes.items():
        pixels = np.random.default_rng(w * h).integers(0, 255, (h, w), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{name}.png")
    return root


def _shard(tmp_path, root: Path, boxes: dict[str, list]) -> tuple[list, Path]:
    frame = pd.DataFrame(
        {
            "image_id": list(boxes),
            "path": [f"{name}.png" for name in boxes],
            "boxes": [json.dumps(b) for b in boxes.values()],
        }
    )
    manifest = tmp_path / "manifest.parquet"
    write_manifest(make_manifest(frame, "rsna_pneumonia"), manifest)
    shard = tmp_path / "shards" / "shard-00000.lmdb"
    argv = ["preprocess", "--manifest", manifest, "--root", root, "--out", shard, "--size", 32]
    return argv, shard


def test_boxes_are_checked_against_each_image_size(tmp_path):
    root = _tree(tmp_path / "img", {"small": (96, 96), "big": (1024, 1024), "edge": (96, 96)})
    argv, shard = _shard(
        tmp_path,
        root,
        {
            "small": [["Lung Opacity", 500.0, 100.0, 50.0, 50.0]],  # inside 1024, not inside 96
            "big": [["Lung Opacity", 500.0, 100.0, 50.0, 50.0]],
            "edge": [["Lung Opacity", 80.0, 80.0, 40.0, 40.0]],  # clipped to 16x16
        },
    )
    assert main([str(a) for a in argv]) == 0
    quarantine = pd.read_csv(shard.with_name("shard-00000.quarantine.csv"))
    assert quarantine["image_id"].tolist() == ["small"]
    assert "lies outside the 96x96 image" in quarantine["reason"].iloc[0]
    index = pd.read_parquet(shard.with_name("shard-00000.index.parquet")).set_index("image_id")
    ((label, *box),) = json.loads(index.loc["edge", "boxes"])  # 80..96 of 96 -> 26.7..32 of 32
    assert label == "Lung Opacity" and box == pytest.approx([80 / 3, 80 / 3, 16 / 3, 16 / 3])
    counts = json.loads(shard.with_name("shard-00000.json").read_text())
    assert counts["boxes_clipped"] == 1 and counts["quarantined"] == 1


def test_tiny_image_is_quarantined(tmp_path):
    root = _tree(tmp_path / "img", {"dot": (1, 1), "strip": (400, 8), "ok": (64, 48)})
    argv, shard = _shard(tmp_path, root, {"dot": [], "strip": [], "ok": []})
    assert main([str(a) for a in argv]) == 0
    quarantine = pd.read_csv(shard.with_name("shard-00000.quarantine.csv")).set_index("image_id")
    assert sorted(quarantine.index) == ["dot", "strip"]
    assert "a 1x1 image, under 16 pixels a side" in quarantine.loc["dot", "reason"]


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        pytest.param(["--n-shards", "0"], ["--n-shards 0", "1 or more"], id="no-shards"),
        pytest.param(["--shard", "3", "--n-shards", "2"], ["--shard 3", "0..1"], id="shard-3of2"),
        pytest.param(["--workers", "0"], ["--workers 0", "1 or more"], id="no-workers"),
        pytest.param(["--max-bad-fraction", "1.5"], ["--max-bad-fraction 1.5"], id="fraction"),
        pytest.param(["--size", "4"], ["--size 4"], id="size"),
    ],
)
def test_nonsense_preprocess_flags_are_refused(tmp_path, caplog, flags, names):
    argv = ["preprocess", "--images", tmp_path, "--out", tmp_path / "o", *flags]
    _fails(argv, caplog, *names)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param(
            "image_id,patient_id,split\na,p,train\nb,q,val\n", ["no test images"], id="no-test-rows"
        ),  # fmt: skip
        pytest.param(
            "image_id,patient_id,split\na,p,test\na,p,test\n",
            ["image a", "more than"],
            id="image-twice",
        ),  # fmt: skip
        pytest.param("image_id,patient_id,split\na,p,tset\n", ["unknown split names"], id="typo"),
        pytest.param("image_id,split\na,test\n", ["patient_id"], id="no-patient-column"),
    ],
)
def test_split_file_is_checked_where_it_is_read(tmp_path, text, names):
    from medslip.data.splits import read_split_table
    from medslip.errors import MedslipError

    path = tmp_path / "splits.csv"
    path.write_text(text)
    with pytest.raises(MedslipError) as err:
        read_split_table(path, ("test",))
    for name in [path, *names]:
        assert str(name) in str(err.value)


@pytest.mark.parametrize(
    ("flags", "names"),
    [
        pytest.param(
            ["--val-fraction", "0.9", "--test-fraction", "0.2"],
            ["--val-fraction"],
            id="fractions-over-1",
        ),  # fmt: skip
        pytest.param(["--subsets", "0", "1"], ["--subsets", "0"], id="subset-0"),
        pytest.param(["--subsets", "0.5", "2"], ["--subsets", "2"], id="subset-2"),
    ],
)
def test_nonsense_split_flags_are_refused(tmp_path, caplog, flags, names):
    manifest = tmp_path / "manifest.parquet"
    frame = pd.DataFrame({"image_id": ["a", "b", "c", "d"], "path": "x.png"})
    write_manifest(make_manifest(frame, "d"), manifest)
    argv = ["splits", "--manifest", manifest, "--out", tmp_path / "s.csv", "--seed", 0, *flags]
    _fails(argv, caplog, *names)


def test_shards_without_a_usable_image_are_an_error(tmp_path, caplog):
    root = _tree(tmp_path / "img", {"dot": (1, 1)})
    argv, shard = _shard(tmp_path, root, {"dot": []})
    assert main([str(a) for a in argv]) == 0  # one shard may be empty
    gather = ["preprocess", "--gather", shard, "--out", shard.parent, "--max-bad-fraction", 1]
    _fails(gather, caplog, shard.parent, "no usable image in the 1 shards")


def test_a_split_without_test_images_is_written_with_a_warning(tmp_path, caplog):
    manifest = tmp_path / "manifest.parquet"
    frame = pd.DataFrame({"image_id": ["a", "b", "c"], "path": "x.png", "split": "train"})
    write_manifest(make_manifest(frame, "d"), manifest)
    out = tmp_path / "splits.csv"
    argv = ["splits", "--manifest", manifest, "--out", out, "--seed", 0, "--val-fraction", 0]
    assert main([str(a) for a in argv]) == 0
    assert f"{out}: no val images" in caplog.text and pd.read_csv(out)["split"].eq("train").all()


def test_gathering_shards_that_hold_the_same_image_is_refused(tmp_path, caplog):
    root = _tree(tmp_path / "img", {"a": (32, 32), "b": (32, 32)})
    argv, shard = _shard(tmp_path, root, {"a": [], "b": []})
    assert main([str(a) for a in argv]) == 0
    other = shard.with_name("shard-00001.lmdb")
    argv[argv.index(shard)] = other
    assert main([str(a) for a in argv]) == 0  # the same images again, as if of another run
    gather = ["preprocess", "--gather", shard, other, "--out", tmp_path / "g"]
    _fails(gather, caplog, "image a", shard, other)


def test_rsna_unknown_detailed_class_is_refused(tmp_path, caplog):
    root = _rsna(tmp_path / "rsna", "a,1,2,3,4,1\n")
    detail = root / "stage_2_detailed_class_info.csv"
    detail.write_text("patientId,class\na,Lung opacity\n")
    _fails(_manifest("rsna_pneumonia", root, tmp_path / "m.parquet"), caplog, detail, "row 1",
           "'Lung opacity'")  # fmt: skip


def test_a_box_the_crop_policy_cuts_away_is_counted(tmp_path, caplog):
    root = _tree(tmp_path / "img", {"wide": (64, 32)})
    argv, shard = _shard(tmp_path, root, {"wide": [["Lung Opacity", 0.0, 0.0, 8.0, 8.0]]})
    assert main([str(a) for a in [*argv, "--aspect", "crop"]]) == 0
    counts = json.loads(shard.with_name("shard-00000.json").read_text())
    assert counts["boxes_clipped"] == 1 and "a box cropped away (aspect crop)" in caplog.text
