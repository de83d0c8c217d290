"""Preprocessing into shards: quarantine of bad input, the max-bad-fraction failure, atomic
shards, stable sharding, masks and boxes carried through the resize, both backends."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medslip.cli import main
from medslip.data import ShardReader
from medslip.data.decode import resize
from medslip.data.manifest import write_manifest
from medslip.data.preprocess import Settings, gather_shards, preprocess_shard, stable_shard
from medslip.data.readers import read_dataset
from medslip.data.shards import ShardWriter
from medslip.errors import MedslipError
from medslip.rle import decode_siim
from tests.test_data_readers import SIIM_POSITIVE, build_nih, build_siim

DEMO = "lung_seg_demo_imlab/Data"


@pytest.fixture
def bad_folder(real_data, tmp_path) -> Path:
    """Two good images and one of each kind of bad input."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(real_data / DEMO / "1.jpg", folder / "good.jpg")
    shutil.copy(real_data / "nih_chestxray14/images/00000001_000.png", folder / "sub/good.png")
    (folder / "zero.png").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes((real_data / DEMO / "2.jpg").read_bytes()[:2000])
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    (folder / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00junk")
    Image.fromarray(np.ones((20, 20), np.float32)).save(folder / "float.tiff")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_bad_inputs_are_quarantined_and_the_run_goes_on(bad_folder, tmp_path):
    out = tmp_path / "shards"
    argv = ["preprocess", "--images", str(bad_folder), "--out", str(out), "--size", "64"]
    assert main([*argv, "--max-bad-fraction", "0.8"]) == 0
    reader = ShardReader(out)
    assert sorted(reader.keys()) == ["good", "sub/good"]
    quarantine = pd.read_csv(out / "quarantine.csv").set_index("image_id")["reason"]
    assert set(quarantine.index) == {"zero", "truncated", "corrupt", "broken", "float"}
    assert "zero-byte" in quarantine["zero"] and "truncated" in quarantine["truncated"]
    assert "unreadable DICOM" in quarantine["broken"] and "mode F" in quarantine["float"]
    manifest = json.loads((out / "summary.json").read_text())
    assert manifest["images"] == 2 and manifest["quarantined"] == 5


def test_too_many_bad_images_fail_with_a_clear_message(bad_folder, tmp_path, caplog):
    out = tmp_path / "shards"
    argv = ["preprocess", "--images", str(bad_folder), "--out", str(out), "--size", "64"]
    assert main([*argv, "--max-bad-fraction", "0.5"]) == 2
    assert "5 of 7 images" in caplog.text and "max_bad_fraction" in caplog.text
    assert (out / "quarantine.csv").is_file() and not (out / "summary.json").exists()


def test_missing_file_in_manifest_is_quarantined(real_data, tmp_path):
    root = build_siim(real_data, tmp_path / "siim")
    manifest = read_dataset("siim_acr", root)
    shard = tmp_path / "out/shard-00000.parquet"
    counts = preprocess_shard(manifest, root, shard, 0, 1, Settings(size=128, aspect="stretch"))
    assert counts["count"] == 2 and counts["quarantined"] == 1 and counts["masks"] == 1
    bad = pd.read_csv(tmp_path / "out/shard-00000.quarantine.csv")
    assert "no file on disk" in bad["reason"].iloc[0]
    # the stored mask is the real RLE mask resized like the image
    reader = ShardReader(shard)
    rle = manifest.set_index("image_id").loc[SIIM_POSITIVE, "mask_rle"]
    want, _ = resize(
        decode_siim(rle, 1024, 1024).astype(np.uint8) * 255, 128, "stretch", 1024, 1024
    )
    got = reader.mask(SIIM_POSITIVE)
    assert got.shape == (128, 128) and (got == (want >= 128)).mean() > 0.995 and got.sum() > 50


def test_writer_failure_leaves_no_shard(tmp_path):
    path = tmp_path / "shard-00000.lmdb"
    with pytest.raises(RuntimeError), ShardWriter(path) as writer:
        writer.add("a", np.zeros((4, 4), np.uint8))
        raise RuntimeError("crash mid-shard")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", ["lmdb", "parquet"])
def test_stable_sharding_partitions_the_manifest(real_data, tmp_path, backend):
    root = build_nih(real_data, tmp_path / "nih")
    manifest = read_dataset("nih_cxr14", root)
    write_manifest(manifest, tmp_path / "manifest.parquet")
    paths = [tmp_path / f"shards/shard-{i:05d}.{backend}" for i in range(3)]
    for i, path in enumerate(paths):
        argv = ["preprocess", "--manifest", str(tmp_path / "manifest.parquet"), "--root", str(root)]
        assert (
            main(
                [
                    *argv,
                    "--shard",
                    str(i),
                    "--n-shards",
                    "3",
                    "--size",
                    "256",
                    "--out",
                    str(path),
                    "--workers",
                    "2",
                ]
            )
            == 0
        )
        assert sorted(ShardReader(path).keys()) == sorted(
            k for k in manifest["image_id"] if stable_shard(k, 3) == i
        )
    gathered = gather_shards(paths, tmp_path / "shards", 0.0)
    assert (gathered["size"], gathered["aspect"]) == (256, "stretch")  # as the shards were made
    reader = ShardReader(tmp_path / "shards")
    assert len(reader) == gathered["images"] == len(manifest)
    for entry in gathered["shards"]:
        assert entry["bytes"] == (tmp_path / "shards" / entry["file"]).stat().st_size
    index = pd.read_parquet(tmp_path / "shards/index.parquet").set_index("image_id")
    # the NIH box (1024 px space) scaled by 256/1024 under the default stretch policy
    assert json.loads(index.loc["00000002_000", "boxes"]) == [["Infiltration", 25, 50, 75, 100]]
    # sha256-based, so the same on every machine and Python (a salted hash() would not be)
    assert [stable_shard(k, 3) for k in ("00000002_000", "a", "b", "c")] == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("policy", "box"),
    [("stretch", [10, 20, 20, 40]), ("pad", [10, 35, 20, 20]), ("crop", [0, 20, 10, 40])],
)
def test_aspect_policies_move_boxes_with_pixels(tmp_path, policy, box):
    """A 200x100 image with a bright 40x40 square at (20, 20): the transformed box must frame
    the bright square in the output image."""
    from medslip.data.decode import transform_boxes

    pixels = np.zeros((100, 200), np.uint8)
    pixels[20:60, 20:60] = 255
    out, geometry = resize(pixels, 100, policy, 200, 100)
    got = transform_boxes([["sq", 20, 20, 40, 40]], geometry, 100)[0][1:]
    assert np.allclose(got, box, atol=1)
    ys, xs = np.nonzero(out > 128)
    assert abs(xs.min() - got[0]) <= 1 and abs(ys.min() - got[1]) <= 1
    assert abs(xs.max() + 1 - (got[0] + got[2])) <= 1 and abs(ys.max() + 1 - (got[1] + got[3])) <= 1


def test_covid_v7_masks_are_stored_beside_images(real_data, tmp_path):
    manifest = read_dataset("covid_chestxray", real_data / "covid_chestxray").head(3)
    shard = tmp_path / "shard-00000.lmdb"
    counts = preprocess_shard(
        manifest, real_data / "covid_chestxray", shard, 0, 1, Settings(96, "stretch")
    )
    assert counts["count"] == 3 and counts["masks"] == 3
    reader = ShardReader(shard)
    for key in manifest["image_id"]:
        mask = reader.mask(key)
        assert mask.shape == (96, 96) and 0.1 < mask.mean() < 0.7  # two lungs, not the image


def test_unknown_shard_path_is_a_clear_error(tmp_path):
    with pytest.raises(MedslipError, match="no such shard"):
        ShardReader(tmp_path / "nothing.lmdb")


def test_gather_refuses_shards_made_with_different_sizes(real_data, tmp_path):
    root = build_nih(real_data, tmp_path / "nih")
    manifest = read_dataset("nih_cxr14", root)
    paths = [tmp_path / f"shard-{i:05d}.lmdb" for i in range(2)]
    for i, (path, size) in enumerate(zip(paths, (64, 128), strict=True)):
        preprocess_shard(manifest, root, path, i, 2, Settings(size=size, aspect="stretch"))
    with pytest.raises(MedslipError, match="different size"):
        gather_shards(paths, tmp_path / "out", 0.0)
    assert not (tmp_path / "out" / "summary.json").exists()
