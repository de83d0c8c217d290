"""Published splits: official where the source has one, else seeded patient-level ones; nested
seeded training subsets (1% within 10% within 100%).

Patients are ordered by ``sha256(f"{seed}:{dataset}:{patient}")``, so a patient's split depends
only on the seed, the dataset name and the set of patients, never on row order. Images without a
patient id count as their own patient. Where the official split has no validation part (NIH
``train_val_list``), validation patients are carved out of the official training patients the
same way; official test images are never moved.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from medslip.errors import MedslipError
from medslip.layout import subset_column  # the column names are defined there


def _order(keys: list[str], seed: int, salt: str) -> list[str]:
    """``keys`` sorted by a seeded sha256 (a stable pseudo-random permutation)."""
    digest = {k: hashlib.sha256(f"{seed}:{salt}:{k}".encode()).hexdigest() for k in keys}
    return sorted(keys, key=lambda k: (digest[k], k))


def _patients(manifest: pd.DataFrame) -> pd.Series:
    return manifest["patient_id"].where(manifest["patient_id"] != "", "img:" + manifest["image_id"])


def assign_splits(
    manifest: pd.DataFrame, seed: int, val_fraction: float, test_fraction: float
) -> pd.Series:
    """Split (train/val/test) of every manifest row, indexed like ``manifest``."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise MedslipError(f"splits: bad fractions val={val_fraction}, test={test_fraction}")
    dataset = str(manifest["dataset"].iloc[0]) if len(manifest) else ""
    patient = _patients(manifest)
    split = manifest["split"].copy()
    official = split != ""
    if official.any() and not official.all():
        raise MedslipError(f"{dataset}: official split given for only some images")
    mixed = split[official].groupby(patient[official]).nunique()
    if (mixed > 1).any():
        raise MedslipError(f"{dataset}: patient {mixed[mixed > 1].index[0]} is in several splits")
    if official.all() and (split == "val").any():
        return split  # the official split already has a validation part
    pool_mask = (split == "train") if official.all() else pd.Series(True, index=split.index)
    pool = _order(sorted(set(patient[pool_mask])), seed, dataset)
    n_val = math.floor(len(pool) * val_fraction)
    n_test = 0 if official.all() else math.floor(len(pool) * test_fraction)
    chosen = {p: "test" for p in pool[:n_test]} | {p: "val" for p in pool[n_test : n_test + n_val]}
    new = patient[pool_mask].map(lambda p: chosen.get(p, "train"))
    split[pool_mask] = new
    return split


def training_subsets(
    manifest: pd.DataFrame, split: pd.Series, seed: int, fractions: list[float]
) -> dict[float, pd.Series]:
    """Boolean membership of each row in nested training subsets, one per fraction.

    Training images are ordered by a seeded hash; the subset of fraction f is the first
    ``ceil(f * n)`` of them, so smaller subsets are always inside larger ones.
    """
    dataset = str(manifest["dataset"].iloc[0]) if len(manifest) else ""
    train_ids = sorted(manifest.loc[split == "train", "image_id"])
    ranked = _order(train_ids, seed, f"{dataset}:subset")
    rank = pd.Series(np.arange(len(ranked)), index=ranked)
    image_rank = manifest["image_id"].map(rank)
    return {
        f: image_rank.notna() & (image_rank < math.ceil(f * len(ranked))) for f in sorted(fractions)
    }


def split_table(
    manifest: pd.DataFrame,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    subset_fractions: list[float],
) -> pd.DataFrame:
    """The published split file: image_id, patient_id, split, one 0/1 column per subset."""
    split = assign_splits(manifest, seed, val_fraction, test_fraction)
    table = pd.DataFrame(
        {"image_id": manifest["image_id"], "patient_id": manifest["patient_id"], "split": split}
    )
    for fraction, member in training_subsets(manifest, split, seed, subset_fractions).items():
        table[subset_column(fraction)] = member.astype(int)
    return table


def split_counts(table: pd.DataFrame) -> dict:
    """Images and patients per split and images per subset, for ``counts.json``."""
    counts: dict = {}
    for name in ("train", "val", "test"):
        part = table[table["split"] == name]
        counts[name] = {"images": len(part), "patients": int(part["patient_id"].nunique())}
    for column in (c for c in table.columns if c.startswith("subset_")):
        counts[column] = int(table[column].sum())
    return counts


def read_split_table(path: Path, needed: tuple[str, ...] = ()) -> pd.DataFrame:
    """A published split file (all columns as text, blanks ""), checked: the columns image_id,
    patient_id and split, unique non-empty image ids, split names train/val/test, and at least
    one image in each split of ``needed``. Anything else is an error naming the file."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise MedslipError(f"{path}: missing; was medslip splits run?") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise MedslipError(f"{path}: not a readable split table ({exc})") from None
    missing = [c for c in ("image_id", "patient_id", "split") if c not in table.columns]
    if missing:
        raise MedslipError(f"{path}: columns {missing} are missing (it has {list(table.columns)})")
    if (table["image_id"].str.strip() == "").any():
        row = int((table["image_id"].str.strip() == "").to_numpy().nonzero()[0][0])
        raise MedslipError(f"{path}: row {row + 1}: no image_id")
    twice = table["image_id"][table["image_id"].duplicated()]
    if len(twice):
        raise MedslipError(f"{path}: image {twice.iloc[0]} is listed more than once")
    unknown = sorted(set(table["split"]) - {"train", "val", "test"})
    if unknown:
        raise MedslipError(f"{path}: unknown split names {unknown} (known: train, val, test)")
    counts = table["split"].value_counts()
    empty = [s for s in needed if not counts.get(s, 0)]
    if empty:
        raise MedslipError(
            f"{path}: no {'/'.join(empty)} images (it has {dict(counts)}); "
            "rerun medslip splits (data.splits) or check the official split"
        )
    return table
