"""``medslip preprocess``: decode, resize and shard images (one shard, the gather step, or a
plain folder of images)."""

from __future__ import annotations

import argparse
import os

NAME = "preprocess"
HELP = "decode + resize images into LMDB/Parquet shards (manifest shard, --gather, or --images DIR)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.data.shards import BACKENDS

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
    parser.add_argument("--size", type=int, default=224, help="side of the stored square image")
    parser.add_argument(
        "--aspect", choices=["stretch", "pad", "crop"], default="stretch", help="aspect policy"
    )
    parser.add_argument(
        "--backend", choices=BACKENDS, help="shard format of --images (default lmdb)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        help="decoding processes (default: the cores this process may use)",
    )
    parser.add_argument(
        "--max-bad-fraction",
        type=float,
        default=0.01,
        help="fail when more than this fraction of images is quarantined (--gather, --images)",
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medslip.data import preprocess as pre
    from medslip.errors import MedslipError

    settings = pre.Settings(args.size, args.aspect)
    if args.size < 8:
        raise MedslipError(f"--size {args.size}: too small")
    if not 0 <= args.shard < args.n_shards:
        raise MedslipError(f"--shard {args.shard} is not in 0..{args.n_shards - 1}")
    if args.backend is not None and not args.images:
        raise MedslipError("--backend is for --images; a shard's format is its file suffix")
    if args.gather:
        pre.gather_shards([Path(p) for p in args.gather], Path(args.out), args.max_bad_fraction)
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
        backend = args.backend or "lmdb"
        pre.preprocess_all(manifest, images, Path(args.out), settings, backend, args.n_shards,
                           args.max_bad_fraction, args.workers)  # fmt: skip
        return 0
    if not args.root:
        raise MedslipError("--manifest needs --root (the dataset root)")
    from medslip.data.manifest import read_manifest

    pre.preprocess_shard(read_manifest(args.manifest), Path(args.root), Path(args.out), args.shard,
                         args.n_shards, settings, args.workers)  # fmt: skip
    return 0
