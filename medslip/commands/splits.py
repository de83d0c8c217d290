"""``medslip splits``: the published split file of a manifest (official or seeded
patient-level) with nested training subsets, plus its counts. Flags left out take the config
schema's defaults (``data.splits.*``)."""

from __future__ import annotations

import argparse

NAME = "splits"
HELP = "write the train/val/test split and nested 1/10/100%% training subsets of a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="manifest Parquet (medslip manifest)")
    parser.add_argument("--out", required=True, help="split CSV to write")
    parser.add_argument("--counts", help="counts JSON to write (images/patients per split)")
    parser.add_argument("--seed", type=int, required=True, help="seed of the split hashes")
    parser.add_argument(
        "--val-fraction", type=float, help="patient fraction in val (data.splits.val_fraction)"
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        help="patient fraction in test where no official test split exists "
        "(data.splits.test_fraction)",
    )
    parser.add_argument(
        "--subsets",
        type=float,
        nargs="+",
        help="nested training subset fractions (data.splits.subset_fractions)",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import logging

    from medslip.atomic import atomic_path, write_bytes_atomic
    from medslip.config import defaults
    from medslip.data.manifest import read_manifest
    from medslip.data.splits import split_counts, split_table
    from medslip.errors import MedslipError

    splits = defaults()["data"]["splits"]
    val = splits["val_fraction"] if args.val_fraction is None else args.val_fraction
    test = splits["test_fraction"] if args.test_fraction is None else args.test_fraction
    subsets = splits["subset_fractions"] if args.subsets is None else args.subsets
    for flag, value in (("--val-fraction", val), ("--test-fraction", test)):
        if not 0 <= value < 1:
            raise MedslipError(f"{flag} {value}: not in [0, 1)")
    if val + test >= 1:
        raise MedslipError(f"--val-fraction {val} + --test-fraction {test}: leave no training")
    bad = [f for f in subsets if not 0 < f <= 1]
    if bad:
        raise MedslipError(f"--subsets {' '.join(map(str, subsets))}: {bad[0]} is not in (0, 1]")
    manifest = read_manifest(args.manifest)
    table = split_table(manifest, args.seed, val, test, subsets)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    counts = split_counts(table) | {"seed": args.seed, "val_fraction": val, "test_fraction": test}
    for split in ("train", "val", "test"):
        if not counts[split]["images"]:
            logging.getLogger("medslip").warning(
                "%s: no %s images (%d images, %d patients); stages that need them will refuse "
                "this split",
                args.out,
                split,
                len(table),
                table["patient_id"].nunique(),
            )
    print(json.dumps(counts))
    if args.counts:
        write_bytes_atomic(args.counts, json.dumps(counts, indent=1).encode())
    return 0
