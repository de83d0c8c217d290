"""Preprocessing: manifest rows -> decoded, resized uint8 images (+ masks, boxes) in shards.

Scatter: :func:`preprocess_shard` handles the rows whose ``stable_shard(image_id)`` is its index
(multiprocessing inside) and writes ``<shard>`` plus three sidecars: ``<stem>.index.parquet``
(geometry and transformed boxes per image), ``<stem>.quarantine.csv`` (image_id, path, reason)
and ``<stem>.json`` (counts, sha256). Gather: :func:`gather_shards` writes ``summary.json``
(the shard list with counts and sha256), ``index.parquet`` and ``quarantine.csv`` beside the
shards and fails when the bad fraction exceeds the configured maximum. Every file name is
defined once in :mod:`medslip.data.shards` (``shard_files``, ``GATHERED``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medslip.atomic import atomic_path, write_bytes_atomic
from medslip.data.decode import BadImage, decode, read_source, resize, resize_mask, transform_boxes
from medslip.data.shards import GATHERED, ShardWriter, shard_files, sidecar
from medslip.errors import MedslipError
from medslip.hashing import sha256_file
from medslip.progress import progress
from medslip.rle import decode_siim

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".bmp", ".tif", ".tiff")
QUARANTINE_COLUMNS = ["image_id", "path", "reason"]
_GEOMETRY = ["src_width", "src_height", "sx", "sy", "ox", "oy"]
MIN_SIDE = 16
"""Images with a side under this many pixels are quarantined (a 1x1 "image" is no X-ray)."""


@dataclass(frozen=True)
class Settings:
    """What every image is turned into: ``size`` x ``size`` uint8 with an aspect policy
    (config ``data.image_size``, ``data.aspect``; the schema owns their defaults)."""

    size: int
    aspect: str


def stable_shard(image_id: str, n_shards: int) -> int:
    """Shard index of an image id: sha256-based, so stable across runs, machines and Pythons."""
    return int(hashlib.sha256(image_id.encode()).hexdigest()[:16], 16) % n_shards


def _mask(root: Path, row: dict, width: int, height: int) -> np.ndarray | None:
    """Source-resolution bool (height, width) mask of a row, or None when it has none."""
    what = row["image_id"]
    if len(row["mask_rle"]):
        try:
            return decode_siim(row["mask_rle"], height, width)
        except MedslipError as exc:
            raise BadImage(
                f"{what}: mask RLE does not fit the {width}x{height} image ({exc})"
            ) from None
    if row["mask_path"]:
        pixels, w, h = decode(read_source(root, row["mask_path"]), row["mask_path"])
        if (w, h) != (width, height):
            raise BadImage(f"{row['mask_path']}: mask is {w}x{h}, image is {width}x{height}")
        return pixels > (127 if pixels.max() > 1 else 0)
    return None


def source_boxes(boxes: list, width: int, height: int, what: str) -> tuple[list, list[str]]:
    """``[label, x, y, w, h]`` boxes clipped to the ``width`` x ``height`` source image, and a
    line for each clipped one; a box wholly outside the image is a :class:`BadImage` (its
    image's truth would be wrong: a positive without its box)."""
    out, clipped = [], []
    for label, x, y, w, h in boxes:
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1, y1 = min(x + w, float(width)), min(y + h, float(height))
        if x1 <= x0 or y1 <= y0:
            raise BadImage(f"{what}: box {[x, y, w, h]} lies outside the {width}x{height} image")
        box = [label, x0, y0, x1 - x0, y1 - y0]
        if box[1:] != [x, y, w, h]:
            clipped.append(f"box {[x, y, w, h]} clipped to the {width}x{height} image: {box[1:]}")
        out.append(box)
    return out, clipped


def process_row(root: Path, row: dict, settings: Settings) -> dict:
    """Decode, resize and transform one manifest row; ``{"reason": ...}`` if it is bad (also an
    image under :data:`MIN_SIDE` pixels a side, or a box outside the image)."""
    try:
        data = read_source(root, row["path"])
        pixels, width, height = decode(data, row["path"], settings.size)
        if min(width, height) < MIN_SIDE:
            raise BadImage(
                f"{row['path']}: a {width}x{height} image, under {MIN_SIDE} pixels a side"
            )
        boxes, clipped = source_boxes(json.loads(row["boxes"]), width, height, row["path"])
        image, geometry = resize(pixels, settings.size, settings.aspect, width, height)
        mask = _mask(root, row, width, height)
    except BadImage as exc:
        return {"image_id": row["image_id"], "path": row["path"], "reason": str(exc)}
    kept = transform_boxes(boxes, geometry, settings.size)
    clipped += [f"a box cropped away (aspect {settings.aspect})"] * (len(boxes) - len(kept))
    return {
        "image_id": row["image_id"],
        "image": image,
        "mask": None if mask is None else resize_mask(mask, settings.size, settings.aspect),
        "geometry": asdict(geometry),
        "boxes": json.dumps(kept),
        "clipped": clipped,
    }


def _process(job: tuple[Path, dict, Settings]) -> dict:
    return process_row(*job)


def process_rows(jobs: list[tuple[Path, dict, Settings]], workers: int) -> Iterator[dict]:
    """:func:`process_row` over ``(root, row, settings)`` jobs, in order, in ``workers`` forked
    processes (in this one when ``workers`` is 1)."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_process, jobs)
        return
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        chunk = max(1, min(16, len(jobs) // (4 * workers)))  # small jobs still spread out
        yield from pool.imap(_process, jobs, chunksize=chunk)


def preprocess_shard(
    manifest: pd.DataFrame,
    root: Path,
    out: Path,
    shard: int,
    n_shards: int,
    settings: Settings,
    workers: int = 1,
) -> dict:
    """Write shard ``shard`` of ``n_shards`` (file ``out``, backend from its suffix) and its
    sidecars; returns the counts written to ``<stem>.json``."""
    out = Path(out)
    mine = manifest[[stable_shard(i, n_shards) == shard for i in manifest["image_id"]]]
    jobs = [(Path(root), row, settings) for row in mine.to_dict("records")]
    bad: list[dict] = []
    index: list[dict] = []
    with ShardWriter(out) as writer:
        rows = progress(
            process_rows(jobs, workers), out.name, total=len(jobs), unit="image", logger=log
        )
        clipped = _collect(rows, writer, bad, index)
    frame = pd.DataFrame(index, columns=["image_id", "boxes", "has_mask", *_GEOMETRY])
    with atomic_path(sidecar(out, "index")) as tmp:
        frame.to_parquet(tmp, index=False)
    with atomic_path(sidecar(out, "quarantine")) as tmp:
        pd.DataFrame(bad, columns=QUARANTINE_COLUMNS).to_csv(tmp, index=False)
    counts = {
        **asdict(settings),
        "file": out.name,
        "count": len(writer.keys),
        "masks": writer.masks,
        "quarantined": len(bad),
        "boxes_clipped": clipped,
        "bytes": out.stat().st_size,
        "sha256": sha256_file(out),
    }
    write_bytes_atomic(sidecar(out, "counts"), json.dumps(counts, indent=1).encode())
    log.info(
        "%s: %d images, %d masks, %d quarantined", out, counts["count"], writer.masks, len(bad)
    )
    return counts


def _collect(results, writer: ShardWriter, bad: list[dict], index: list[dict]) -> int:
    """Store the good results, list the bad ones; returns the number of boxes clipped."""
    clipped = 0
    for result in results:
        if "reason" in result:
            log.warning("quarantined %s: %s", result["image_id"], result["reason"])
            bad.append(result)
            continue
        for line in result["clipped"]:
            log.warning("%s: %s", result["image_id"], line)
        clipped += len(result["clipped"])
        writer.add(result["image_id"], result["image"], result["mask"])
        index.append(
            {
                "image_id": result["image_id"],
                "boxes": result["boxes"],
                "has_mask": result["mask"] is not None,
                **result["geometry"],
            }
        )
    return clipped


def gather_shards(shards: list[Path], out_dir: Path, max_bad_fraction: float) -> dict:
    """Write ``summary.json``, ``index.parquet`` and ``quarantine.csv`` into ``out_dir``.

    Raises MedslipError when the shards were made with different settings, and (after writing
    ``quarantine.csv``) when more than ``max_bad_fraction`` of the images were quarantined or
    no image is usable at all.
    """
    out_dir = Path(out_dir)
    entries, indexes, quarantines = [], [], []
    for shard in map(Path, shards):
        for path in (shard, *(sidecar(shard, kind) for kind in ("counts", "index", "quarantine"))):
            if not path.is_file():
                raise MedslipError(f"{path}: missing; was shard {shard.name} written?")
        entries.append(json.loads(sidecar(shard, "counts").read_text()))
        indexes.append(pd.read_parquet(sidecar(shard, "index")).assign(_shard=str(shard)))
        quarantines.append(pd.read_csv(sidecar(shard, "quarantine"), dtype=str))
    made_with = {(e["size"], e["aspect"]) for e in entries}
    if len(made_with) != 1:
        raise MedslipError(f"{out_dir}: shards made with different size/aspect {sorted(made_with)}")
    ((size, aspect),) = made_with
    good = sum(e["count"] for e in entries)
    quarantine = pd.concat(quarantines, ignore_index=True).sort_values("image_id")
    with atomic_path(out_dir / GATHERED["quarantine"]) as tmp:
        quarantine.to_csv(tmp, index=False)
    total = good + len(quarantine)
    fraction = len(quarantine) / total if total else 0.0
    log.info(
        "%d images in %d shards, %d quarantined (%.2f%%)",
        good,
        len(entries),
        len(quarantine),
        100 * fraction,
    )
    if fraction > max_bad_fraction or not good:
        for row in quarantine.itertuples(index=False):  # the table goes with the failed job
            log.error("quarantined %s (%s): %s", row.image_id, row.path, row.reason)
        if not good:
            raise MedslipError(f"{out_dir}: no usable image in the {len(entries)} shards")
        raise MedslipError(
            f"{out_dir}: {len(quarantine)} of {total} images ({100 * fraction:.1f}%) could not be "
            f"used, more than the allowed {100 * max_bad_fraction:.1f}% "
            f"(data.max_bad_fraction); each with its reason above and in "
            f"{out_dir / GATHERED['quarantine']}"
        )
    index = pd.concat(indexes, ignore_index=True).sort_values("image_id", kind="stable")
    twice = index[index["image_id"].duplicated(keep=False)]
    if len(twice):
        first = twice[twice["image_id"] == twice["image_id"].iloc[0]]
        raise MedslipError(
            f"image {first['image_id'].iloc[0]} is in {' and '.join(first['_shard'])} "
            f"({twice['image_id'].nunique()} such images): shards of different --n-shards runs?"
        )
    index = index.drop(columns="_shard")
    with atomic_path(out_dir / GATHERED["index"]) as tmp:
        index.to_parquet(tmp, index=False)
    summary = {
        "size": size,
        "aspect": aspect,
        "images": good,
        "quarantined": len(quarantine),
        "bad_fraction": fraction,
        "boxes_clipped": sum(e.get("boxes_clipped", 0) for e in entries),
        "shards": entries,
    }
    write_bytes_atomic(out_dir / GATHERED["summary"], json.dumps(summary, indent=1).encode())
    return summary


def folder_manifest(images: Path) -> pd.DataFrame:
    """A minimal manifest of every image file below ``images``, keyed by its relative path
    without the extension."""
    from medslip.data.manifest import make_manifest

    files = sorted(
        p for p in Path(images).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    rel = [p.relative_to(images).as_posix() for p in files]
    frame = pd.DataFrame({"image_id": [r.rsplit(".", 1)[0] for r in rel], "path": rel})
    return make_manifest(frame, "folder")


def preprocess_all(
    manifest: pd.DataFrame,
    root: Path,
    out_dir: Path,
    settings: Settings,
    backend: str,
    n_shards: int,
    max_bad_fraction: float,
    workers: int = 1,
) -> dict:
    """Every shard, then the gather step, in one process (the CLI's ``--images`` mode)."""
    out_dir = Path(out_dir)
    paths = [out_dir / shard_files(i, backend)["shard"] for i in range(n_shards)]
    for i, path in enumerate(paths):
        preprocess_shard(manifest, root, path, i, n_shards, settings, workers)
    return gather_shards(paths, out_dir, max_bad_fraction)
