"""``medslip preprocess``: decode, resize and shard images (one shard, the gather step, or a
plain folder of images). Flags left out take the config schema's defaults (``data.*``)."""

from __future__ import annotations

import argparse
import os

NAME = "preprocess"
HELP = "decode + resize images into LMDB/Parquet shards (manifest shard, --gather, or --images DIR)"
OUTPUT_EITHER = ("out",)
"""--out is a shard file (--manifest) or a directory (checked before the command runs)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.layout import BACKENDS

    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--manifest", help="manifest Parquet; writes shard --shard of --n-shards")
    mode.add_argument("--gather", nargs="+", metavar="SHARD", help="shard files to gather")
    mode.add_argument("--images", help="plain folder of images (keys: relative path, no suffix)")
    parser.add_argument("--root", help="dataset root the manifest paths are relative to")
    parser.add_argument("--shard", type=int, default=0, help="shard index written (--manifest)")
    parser.add_argument(
        "--n-shards", type=int, default=1, help="shards the manifest is split into by image-id hash"
    )
    parser.add_argument("--out", required=True, help="shard file (--manifest) or directory")
    parser.add_argument(
        "--size", type=int, help="side of the stored square image (data.image_size)"
    )
    parser.add_argument("--aspect", choices=["stretch", "pad", "crop"], help="data.aspect")
    parser.add_argument(
        "--backend", choices=BACKENDS, help="shard format of --images (data.backend)"
    )
    parser.add_argument(
        "--workers", type=int, help="decoding processes (default: the cores this process may use)"
    )
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        help="fail when more than this fraction of images is quarantined (--gather, --images; "
        "data.max_bad_fraction)",
    )


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medslip.config import defaults
    from medslip.data import preprocess as pre
    from medslip.errors import MedslipError
    from medslip.flags import at_least

    data = defaults()["data"]
    size = data["image_size"] if args.size is None else args.size
    aspect = args.aspect or data["aspect"]
    max_bad = data["max_bad_fraction"] if args.max_bad_fraction is None else args.max_bad_fraction
    workers = _cores() if args.workers is None else args.workers
    settings = pre.Settings(size, aspect)
    if size < 8:
        raise MedslipError(f"--size {size}: too small")
    at_least("n_shards", args.n_shards, 1)
    at_least("workers", args.workers, 1)
    if not 0 <= args.shard < args.n_shards:
        raise MedslipError(f"--shard {args.shard}: not in 0..{args.n_shards - 1} (--n-shards)")
    if not 0 <= max_bad <= 1:
        raise MedslipError(f"--max-bad-fraction {max_bad}: not in [0, 1]")
    if args.backend is not None and not args.images:
        raise MedslipError("--backend is for --images; a shard's format is its file suffix")
    if args.gather:
        pre.gather_shards([Path(p) for p in args.gather], Path(args.out), max_bad)
        return 0
    if args.images:
        images = Path(args.images)
        if not images.is_dir():
            raise MedslipError(f"--images {images}: not a directory")
        manifest = pre.folder_manifest(images)
        if manifest.empty:
            raise MedslipError(
                f"--images {images}: no image files ({', '.join(pre.IMAGE_SUFFIXES)})"
            )
        backend = args.backend or data["backend"]
        out = Path(args.out)
        pre.preprocess_all(
            manifest, images, out, settings, backend, args.n_shards, max_bad, workers
        )
        return 0
    if not args.root:
        raise MedslipError("--manifest needs --root (the dataset root)")
    from medslip.data.manifest import read_manifest

    manifest = read_manifest(args.manifest)
    root, out = Path(args.root), Path(args.out)
    pre.preprocess_shard(manifest, root, out, args.shard, args.n_shards, settings, workers)
    return 0
