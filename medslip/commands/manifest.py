"""``medslip manifest``: read an official-format dataset tree into the manifest Parquet."""

from __future__ import annotations

import argparse

NAME = "manifest"
HELP = "read an official-format dataset tree (MIMIC, NIH, RSNA, SIIM, IU, COVID) into a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from medslip.data.readers import READER_MODULES

    parser.add_argument(
        "--dataset", required=True, choices=sorted(READER_MODULES), help="which official format"
    )
    parser.add_argument("--root", required=True, help="root of the official-format tree")
    parser.add_argument("--out", required=True, help="manifest Parquet to write")
    parser.add_argument(
        "--views",
        nargs="*",
        help="MIMIC-CXR-JPG ViewPosition values to keep (default PA AP; none given: all)",
    )


def run(args: argparse.Namespace) -> int:
    import logging

    from medslip.data.manifest import write_manifest
    from medslip.data.readers import read_dataset

    options = {}
    if args.views is not None:
        if args.dataset != "mimic_cxr_jpg":
            from medslip.errors import MedslipError

            raise MedslipError("--views applies to --dataset mimic_cxr_jpg only")
        options["views"] = args.views or None
    frame = read_dataset(args.dataset, args.root, **options)
    write_manifest(frame, args.out)
    logging.getLogger("medslip").info("%s: %d images -> %s", args.dataset, len(frame), args.out)
    return 0
