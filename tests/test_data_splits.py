"""Published splits: official kept, seeded patient-level otherwise, nested training subsets."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from medslip.cli import main
from medslip.data.manifest import make_manifest, write_manifest
from medslip.data.splits import assign_splits, split_table
from medslip.errors import MedslipError


def manifest(n_patients: int = 200, images_per_patient: int = 3, split: str = "") -> pd.DataFrame:
    rows = [
        {"image_id": f"p{p}_i{i}", "patient_id": f"p{p}", "path": f"{p}/{i}.png", "split": split}
        for p in range(n_patients)
        for i in range(images_per_patient)
    ]
    return make_manifest(pd.DataFrame(rows), "toy")


def test_seeded_patient_level_split_fractions_and_stability():
    m = manifest()
    table = split_table(m, seed=5, val_fraction=0.1, test_fraction=0.2, subset_fractions=[1.0])
    per_patient = table.groupby("patient_id")["split"].nunique()
    assert (per_patient == 1).all()  # no patient in two splits
    patients = table.drop_duplicates("patient_id")["split"].value_counts()
    assert (patients["test"], patients["val"], patients["train"]) == (40, 20, 140)
    # same seed -> same split whatever the row order; another seed -> another split
    shuffled = m.sample(frac=1, random_state=0)
    again = split_table(shuffled, 5, 0.1, 0.2, [1.0]).set_index("image_id")["split"]
    assert again.loc[table["image_id"]].tolist() == table["split"].tolist()
    other = split_table(m, 6, 0.1, 0.2, [1.0])["split"]
    assert (other != table["split"]).any()


def test_official_split_is_kept_and_val_carved_from_train():
    m = manifest(split="train")
    m.loc[m["patient_id"].isin([f"p{i}" for i in range(50)]), "split"] = "test"
    split = assign_splits(m, seed=1, val_fraction=0.1, test_fraction=0.3)
    assert (split[m["split"] == "test"] == "test").all()  # official test never moves
    assert split.value_counts()["test"] == 150
    assert m.loc[split == "val", "patient_id"].nunique() == 15  # 10% of the 150 train patients
    with_val = m.assign(split=split)
    assert assign_splits(with_val, 2, 0.1, 0.3).tolist() == split.tolist()


def test_nested_subsets():
    table = split_table(
        manifest(), seed=3, val_fraction=0.1, test_fraction=0.2, subset_fractions=[0.01, 0.1, 1.0]
    )
    small, mid, full = (
        table[c].astype(bool) for c in ("subset_1pct", "subset_10pct", "subset_100pct")
    )
    n_train = (table["split"] == "train").sum()
    assert full.sum() == n_train and mid.sum() == -(-n_train // 10) and small.sum() >= 1
    assert (
        (small <= mid).all() and (mid <= full).all() and not full[table["split"] != "train"].any()
    )


def test_patient_in_two_official_splits_is_an_error():
    m = manifest(n_patients=2, split="train")
    m.loc[0, "split"] = "test"
    with pytest.raises(MedslipError, match="patient p0 is in several splits"):
        assign_splits(m, 1, 0.1, 0.2)


def test_splits_cli_writes_table_and_counts(tmp_path):
    write_manifest(manifest(), tmp_path / "m.parquet")
    argv = ["splits", "--manifest", str(tmp_path / "m.parquet"), "--seed", "9"]
    out = ["--out", str(tmp_path / "s.csv"), "--counts", str(tmp_path / "c.json")]
    assert main([*argv, *out]) == 0
    counts = json.loads((tmp_path / "c.json").read_text())
    table = pd.read_csv(tmp_path / "s.csv")
    assert counts["test"]["patients"] == 40 and counts["seed"] == 9
    assert counts["subset_100pct"] == table["subset_100pct"].sum() == counts["train"]["images"]
