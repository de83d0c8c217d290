"""Pixel fidelity: an image read back from a shard equals an independent full decode + resize of
the source (torch antialiased bilinear, DICOM windowing written out by hand) within 1 grey
level on average, for JPEG (draft mode), PNG and 12-bit DICOM with rescale, window (or min-max
without one) and MONOCHROME1."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.uid import ExplicitVRLittleEndian

from medslip.cli import main
from medslip.data import ShardReader

SIZE = 224
SIIM_DICOM = (
    "siim_acr_pneumothorax/dicom/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
)


def reference_resize(gray: np.ndarray, size: int) -> np.ndarray:
    """Full-resolution (H, W) values -> (size, size) with torch's antialiased bilinear."""
    t = torch.from_numpy(gray.astype(np.float32))[None, None]
    out = torch.nn.functional.interpolate(
        t, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return out[0, 0].numpy()


def write_12bit_dicom(
    real: Path, path: Path, monochrome1: bool, windowed: bool = True
) -> tuple[np.ndarray, dict]:
    """The real SIIM image re-stored as 12-bit raw values with rescale (+ window) tags."""
    ds = pydicom.dcmread(real / SIIM_DICOM)
    raw = (ds.pixel_array.astype(np.uint16) * 16 + 7).astype(np.uint16)  # 7..4071, 12 bits
    if not windowed:  # stored values far from 0: min-max must use the image's own minimum
        raw = raw // 2 + 2000
    if monochrome1:
        raw = (4095 - raw).astype(np.uint16)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    tags = {"slope": 0.5, "intercept": -100.0, "center": 900.0, "width": 1400.0}
    ds.RescaleSlope, ds.RescaleIntercept = tags["slope"], tags["intercept"]
    if windowed:
        ds.WindowCenter, ds.WindowWidth = tags["center"], tags["width"]
    else:
        tags["center"] = tags["width"] = None
    ds.PixelData = raw.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return raw, tags


def reference_dicom(raw: np.ndarray, tags: dict, monochrome1: bool) -> np.ndarray:
    """Independent display pipeline: modality rescale, linear window (min-max without one),
    MONOCHROME1 inversion."""
    values = raw * tags["slope"] + tags["intercept"]
    if tags["width"] is None:
        shown = (values - values.min()) / (values.max() - values.min()) * 255.0
    else:
        low = tags["center"] - 0.5 - (tags["width"] - 1) / 2
        shown = np.clip((values - low) / (tags["width"] - 1) * 255.0, 0, 255)
    return 255.0 - shown if monochrome1 else shown


@pytest.fixture(scope="module")
def sources(real_data, tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """A folder with one real JPEG (large RGB), one real NIH PNG and three 12-bit DICOMs, and the
    independently computed expected (SIZE, SIZE) images keyed like the shards."""
    folder = tmp_path_factory.mktemp("sources")
    jpeg = real_data / "covid_chestxray/images/01E392EE-69F9-4E33-BFCE-E5C968654078.jpeg"
    png = real_data / "nih_chestxray14/images/00000001_000.png"
    shutil.copy(jpeg, folder / "chest.jpeg")
    shutil.copy(png, folder / "nih.png")
    expected = {
        "chest": reference_resize(np.asarray(Image.open(jpeg).convert("L")), SIZE),
        "nih": reference_resize(np.asarray(Image.open(png).convert("L")), SIZE),
    }
    for name, mono1, windowed in (
        ("mono2", False, True),
        ("mono1", True, True),
        ("unwindowed", False, False),
    ):
        raw, tags = write_12bit_dicom(real_data, folder / f"{name}.dcm", mono1, windowed)
        expected[name] = reference_resize(reference_dicom(raw, tags, mono1), SIZE)
    return folder, expected


@pytest.mark.parametrize("backend", ["lmdb", "parquet"])
def test_shard_pixels_match_independent_decode(sources, tmp_path, backend):
    folder, expected = sources
    out = tmp_path / "shards"
    argv = ["preprocess", "--images", str(folder), "--out", str(out), "--size", str(SIZE)]
    assert main([*argv, "--backend", backend, "--max-bad-fraction", "0"]) == 0
    reader = ShardReader(out)
    assert sorted(reader.keys()) == sorted(expected)
    for key, want in expected.items():
        got = reader[key]
        assert got.shape == (SIZE, SIZE) and got.dtype == np.uint8
        error = np.abs(got.astype(np.float64) - want).mean()
        assert error <= 1.0, f"{key}: mean abs difference {error:.2f} grey levels"
