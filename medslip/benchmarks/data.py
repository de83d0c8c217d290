"""``medslip bench data``: preprocessing and loading speed, side by side in one run.

Sections (median images/s over repeats, one process unless stated):

- ``preprocess``: decode + resize to ``--size`` of the real images in ../shared/data/real per
  format (JPEG: COVID collection + lung demo; PNG: NIH; DICOM: SIIM, stored as-is and as 12-bit
  raw) with :mod:`medslip.data.decode` versus a naive PIL full decode + resize; and the same for
  the real JPEGs re-encoded at MIMIC-CXR size (2544x3056, quality 95), where draft mode pays.
  ``medslip`` is the preprocessing code path in one process; ``medslip_<N>proc`` the same in a
  pool of ``--workers`` processes, as ``medslip preprocess --workers N`` runs it. At MIMIC size
  two more rows time decoding alone (full PIL decode; medslip's DCT-scaled decode): the entropy
  decoding both must do bounds the per-process speed-up.
- ``random_read``: random-order reads of ``--n-read`` images at 256x256 from LMDB and Parquet
  shards versus a folder of the same images as PNGs read with PIL.
- ``dataloader``: one epoch of a DataLoader (2 workers, batch 64) over the LMDB shards with
  :class:`~medslip.data.dataset.PretrainAugment` at 224 px applied to each batch.

Writes ``results/benchmarks/data_speed.csv`` (section, case, method, images, median_s,
images_per_s, speedup = images/s over the naive/PNG baseline of the same case) and prints it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from medslip.atomic import atomic_path

MIMIC_SIZE = (2544, 3056)  # width, height of a typical MIMIC-CXR-JPG image


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _naive(path: Path, size: int) -> np.ndarray:
    """What the official code does per image: full PIL decode, then resize."""
    return np.asarray(Image.open(path).convert("L").resize((size, size), Image.BILINEAR))


def _rows(files: list[Path], size: int) -> list[tuple[Path, dict, object]]:
    """``medslip preprocess`` jobs (root, manifest row, settings) for ``files``."""
    from medslip.data.preprocess import Settings

    settings = Settings(size=size, aspect="stretch")
    row = {"mask_rle": [], "mask_path": "", "boxes": "[]"}
    return [(p.parent, {**row, "image_id": p.stem, "path": p.name}, settings) for p in files]


def _ours(files: list[Path], size: int, workers: int) -> None:
    """The preprocessing code path (:func:`medslip.data.preprocess.process_rows`) in ``workers``
    processes, as ``medslip preprocess --workers`` runs it."""
    from medslip.data.preprocess import process_rows

    results = list(process_rows(_rows(files, size), workers))
    if any("reason" in r for r in results):
        raise RuntimeError(f"benchmark image failed to decode: {results}")


def _naive_dicom(path: Path, size: int) -> np.ndarray:
    """Naive DICOM path: pydicom pixel_array, min-max to uint8, PIL resize."""
    import pydicom

    raw = pydicom.dcmread(path).pixel_array.astype(np.float32)
    raw = (raw - raw.min()) * (255.0 / max(float(raw.max() - raw.min()), 1.0))
    return np.asarray(Image.fromarray(raw.astype(np.uint8)).resize((size, size), Image.BILINEAR))


def _sources(real: Path, work: Path) -> dict[str, list[Path]]:
    """Real files per format, plus the real JPEGs re-encoded at MIMIC size."""
    covid = sorted((real / "covid_chestxray/images").glob("*.jp*g"))
    jpegs = covid + sorted((real / "lung_seg_demo_imlab/Data").glob("*.jpg"))
    pngs = sorted((real / "nih_chestxray14/images").glob("*.png"))
    dicom = next((real / "siim_acr_pneumothorax/dicom").glob("*.dcm"))
    dicoms = [dicom, _twelve_bit(dicom, work / "twelve_bit.dcm")]
    mimic = []
    for i, path in enumerate(jpegs[:24]):
        big = Image.open(path).convert("L").resize(MIMIC_SIZE, Image.BICUBIC)
        mimic.append(work / f"mimic_{i}.jpg")
        big.save(mimic[-1], quality=95)
    return {"jpeg": jpegs, "png": pngs, "dicom": dicoms * 16, "jpeg@mimic_size": mimic * 2}


def _twelve_bit(source: Path, out: Path) -> Path:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    ds = pydicom.dcmread(source)
    raw = ds.pixel_array.astype(np.uint16) * 16
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.RescaleSlope, ds.RescaleIntercept, ds.WindowCenter, ds.WindowWidth = 1, 0, 2048, 4000
    ds.PixelData = raw.tobytes()
    ds.save_as(out, enforce_file_format=True)
    return out


def _preprocess_rows(real: Path, work: Path, size: int, repeats: int, workers: int) -> list[dict]:
    rows = []
    for case, files in _sources(real, work).items():
        naive = _naive_dicom if case == "dicom" else _naive
        seconds = _median_time(lambda n=naive, f=files: [n(p, size) for p in f], repeats)
        rows.append(_row("preprocess", case, "naive_pil", len(files), seconds))
        for n in sorted({1, workers}):
            seconds = _median_time(lambda n=n, f=files: _ours(f, size, n), repeats)
            method = "medslip" if n == 1 else f"medslip_{n}proc"
            rows.append(_row("preprocess", case, method, len(files), seconds))
        if case == "jpeg@mimic_size":  # where the time goes: decoding alone, full vs 1/8 scale
            for method, fn in (
                ("pil_full_decode_only", _full_decode),
                ("draft_decode_only", _draft),
            ):
                seconds = _median_time(lambda fn=fn, f=files: [fn(p, size) for p in f], repeats)
                rows.append(_row("preprocess", case, method, len(files), seconds))
    return rows


def _full_decode(path: Path, size: int) -> None:
    """PIL's full-resolution decode alone (``size`` unused: same signature as the others)."""
    Image.open(path).load()


def _draft(path: Path, size: int) -> None:
    from medslip.data.decode import decode

    decode(path.read_bytes(), path.name, size)


def _row(section: str, case: str, method: str, n: int, seconds: float) -> dict:
    return {
        "section": section,
        "case": case,
        "method": method,
        "images": n,
        "median_s": seconds,
        "images_per_s": n / seconds,
    }


def _read_rows(real: Path, work: Path, n: int, repeats: int) -> tuple[list[dict], Path]:
    from medslip.data.shards import ShardReader, ShardWriter

    base = [
        np.asarray(Image.open(p).convert("L").resize((256, 256), Image.BILINEAR))
        for p in sorted((real / "nih_chestxray14/images").glob("*.png"))
        + sorted((real / "covid_chestxray/images").glob("*"))[:60]
    ]
    keys = [f"img{i:06d}" for i in range(n)]
    folder = work / "png256"
    folder.mkdir()
    for i, key in enumerate(keys):
        Image.fromarray(base[i % len(base)]).save(folder / f"{key}.png")
    readers = {}
    for backend in ("lmdb", "parquet"):
        path = work / f"read-shard.{backend}"
        with ShardWriter(path) as writer:
            for i, key in enumerate(keys):
                writer.add(key, base[i % len(base)])
        readers[backend] = ShardReader(path)
    order = list(np.random.default_rng(0).permutation(keys))
    rows = [
        _row(
            "random_read",
            "256px",
            "png_folder_pil",
            n,
            _median_time(
                lambda: [np.asarray(Image.open(folder / f"{k}.png")) for k in order], repeats
            ),
        )
    ]
    for backend, reader in readers.items():
        seconds = _median_time(lambda r=reader: [r[k] for k in order], repeats)
        rows.append(_row("random_read", "256px", f"shard_{backend}", n, seconds))
    return rows, work / "read-shard.lmdb"


def _loader_rows(shard: Path, repeats: int, workers: int) -> list[dict]:
    import torch

    from medslip.config import defaults
    from medslip.data.dataset import PretrainAugment, ShardDataset
    from medslip.settings import TrainSettings

    dataset = ShardDataset(shard)
    paper = defaults() | {"preset": "paper"}
    augment = PretrainAugment(size=224, scale=TrainSettings.from_config(paper).crop_scale)

    def epoch() -> None:
        loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=64,
            shuffle=True,
            num_workers=workers,
            persistent_workers=False,
            generator=torch.Generator().manual_seed(0),
        )
        generator = torch.Generator().manual_seed(0)
        for batch in loader:
            augment(batch["image"], generator)

    seconds = _median_time(epoch, repeats)
    case = f"224px_{workers}workers"
    return [_row("dataloader", case, "shards+PretrainAugment", len(dataset), seconds)]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medslip bench data", description=__doc__.splitlines()[0])
    parser.add_argument("--real", default="../shared/data/real", help="real public data root")
    parser.add_argument("--size", type=int, default=224, help="preprocessing target size")
    parser.add_argument("--n-read", type=int, default=4000, help="images for random reads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--workers", type=int, default=2, help="preprocessing processes and DataLoader workers"
    )
    parser.add_argument("--out", default="results/benchmarks/data_speed.csv")
    args = parser.parse_args(argv)
    real = Path(args.real)
    if not real.is_dir():
        from medslip.errors import MedslipError

        raise MedslipError(f"--real {real}: not a directory")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = _preprocess_rows(real, work, args.size, args.repeats, args.workers)
        read_rows, shard = _read_rows(real, work, args.n_read, args.repeats)
        rows += read_rows + _loader_rows(shard, args.repeats, args.workers)
    table = pd.DataFrame(rows)
    baseline = table[table["method"].isin(["naive_pil", "png_folder_pil"])]
    base_rate = dict(zip(baseline["case"], baseline["images_per_s"], strict=True))
    table["speedup"] = [
        r / base_rate[c] if c in base_rate else float("nan")
        for c, r in zip(table["case"], table["images_per_s"], strict=True)
    ]
    out = Path(args.out)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4g")
    with pd.option_context("display.width", 140, "display.float_format", "{:.3g}".format):
        print(table.to_string(index=False))
    print(f"wrote {out}")
    return 0
