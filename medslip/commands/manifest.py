"""``medslip manifest``: read an official-format dataset tree into the manifest Parquet."""

from __future__ import annotations

import argparse

NAME = "manifest"
HELP = "read an official-format dataset tree (MIMIC, NIH, RSNA, SIIM, IU, COVID) into a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.datasets import DATASETS

    parser.add_argument(
        "--dataset", required=True, choices=sorted(DATASETS), help="which official format"
    )
    parser.add_argument("--root", required=True, help="root of the official-format tree")
    parser.add_argument("--out", required=True, help="manifest Parquet to write")
    parser.add_argument(
        "--views",
        nargs="*",
        help="MIMIC-CXR-JPG ViewPosition values kept (default: data.mimic_views; none: all)",
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from medslip.config import defaults
    from medslip.data.manifest import write_manifest
    from medslip.data.readers import read_dataset
    from medslip.errors import MedslipError

    options = {}
    if args.dataset == "mimic_cxr_jpg":
        views = defaults()["data"]["mimic_views"] if args.views is None else args.views
        options["views"] = views or None
    elif args.views is not None:
        raise MedslipError("--views applies to --dataset mimic_cxr_jpg only")
    frame = read_dataset(args.dataset, args.root, **options)
    write_manifest(frame, args.out)
    logging.getLogger("medslip").info("%s: %d images -> %s", args.dataset, len(frame), args.out)
    return 0
