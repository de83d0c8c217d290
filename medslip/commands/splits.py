"""``medslip splits``: the published split file of a manifest (official or seeded
patient-level) with nested training subsets, plus its counts."""

from __future__ import annotations

import argparse

NAME = "splits"
HELP = "write the train/val/test split and nested 1/10/100%% training subsets of a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="manifest Parquet (medslip manifest)")
    parser.add_argument("--out", required=True, help="split CSV to write")
    parser.add_argument("--counts", help="counts JSON to write (images/patients per split)")
    parser.add_argument("--seed", type=int, required=True, help="seed of the split hashes")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="patient fraction in val")
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="patient fraction in test where no official test split exists",
    )
    parser.add_argument(
        "--subsets",
        type=float,
        nargs="+",
        default=[0.01, 0.1, 1.0],
        help="nested training subset fractions",
    )


def run(args: argparse.Namespace) -> int:
    import json

    from medslip.atomic import atomic_path, write_bytes_atomic
    from medslip.data.manifest import read_manifest
    from medslip.data.splits import split_counts, split_table

    manifest = read_manifest(args.manifest)
    table = split_table(manifest, args.seed, args.val_fraction, args.test_fraction, args.subsets)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False)
    counts = split_counts(table) | {
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "test_fraction": args.test_fraction,
    }
    print(json.dumps(counts))
    if args.counts:
        write_bytes_atomic(args.counts, json.dumps(counts, indent=1).encode())
    return 0
