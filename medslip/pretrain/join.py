"""Pretraining data: report label matrices joined with the MIMIC images by ``study_id``.

The join (``medslip pretrain-data``) reads the report stage (``label_matrix.npy``,
``uncertain_mask.npy``, ``report_ids.txt``: one row per study) and the data stage of
MIMIC-CXR-JPG (``manifest.parquet``, ``splits.csv``, ``shards/index.parquet``) and writes
``images.parquet`` (image_id, study_id, split, row: the study's matrix row; every image of a study
gets its study's labels) and ``counts.csv`` (images and studies joined / unmatched, per split).
The uncertainty policy is applied when training reads the matrices, so changing it reruns
training, not parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medslip.atomic import atomic_path
from medslip.data.manifest import read_manifest
from medslip.data.shards import ShardReader
from medslip.data.splits import read_split_table
from medslip.errors import MedslipError
from medslip.layout import JOIN_FILES
from medslip.reports.outputs import load_report_labels, read_ids

POLICIES = ("unmentioned", "positive", "absent")


def join_pretraining(
    study_ids: list[str], manifest: pd.DataFrame, splits: pd.DataFrame, stored: set[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Images of ``manifest`` with their study's matrix row and published split.

    ``study_ids[i]`` labels matrix row i; ``stored`` is the set of image ids in the shards.
    Returns (images: image_id, study_id, split, row; counts: kind, status, train, val, test,
    total).
    """
    row_of = pd.Series(np.arange(len(study_ids)), index=pd.Index(study_ids, name="study_id"))
    if row_of.index.has_duplicates:
        raise MedslipError(f"report_ids: study {row_of.index[row_of.index.duplicated()][0]} twice")
    images = manifest[["image_id", "study_id"]].merge(
        splits[["image_id", "split"]], on="image_id", how="left", validate="one_to_one"
    )
    images["split"] = images["split"].fillna("")
    images["row"] = images["study_id"].map(row_of).fillna(-1).astype("int64")
    images["status"] = np.select(
        [images["row"] < 0, ~images["image_id"].isin(stored)],
        ["no_report", "not_in_shards"],
        "joined",
    )
    imaged = set(images["study_id"])
    orphans = pd.DataFrame({"study_id": [s for s in study_ids if s not in imaged]})
    counts = _counts(images, orphans)
    joined = images[images["status"] == "joined"].drop(columns="status")
    return joined.sort_values("image_id", ignore_index=True), counts


def _counts(images: pd.DataFrame, orphans: pd.DataFrame) -> pd.DataFrame:
    status = images.groupby("study_id")["status"].agg(
        lambda s: "joined" if (s == "joined").any() else s.iloc[0]
    )
    studies = images.drop_duplicates("study_id")[["study_id", "split"]]
    studies = studies.assign(status=studies["study_id"].map(status))
    rows = []
    for kind, frame in (("images", images), ("studies", studies)):
        for status, part in frame.groupby("status"):
            by_split = part["split"].value_counts()
            rows.append(
                {"kind": kind, "status": status}
                | {s: int(by_split.get(s, 0)) for s in ("train", "val", "test")}
                | {"total": len(part)}
            )
    rows.append(
        {"kind": "studies", "status": "report_without_image", "train": 0, "val": 0, "test": 0}
        | {"total": len(orphans)}
    )
    return pd.DataFrame(rows)


def write_join(reports_dir: Path, data_dir: Path, out_dir: Path) -> pd.DataFrame:
    """Run :func:`join_pretraining` on the stage outputs and write :data:`JOIN_FILES`.

    The report stage is read with :func:`~medslip.reports.outputs.load_report_labels`; zero
    joined images is an error naming the label and image files.
    """
    ids_file = reports_dir / "report_ids.txt"
    manifest_file = data_dir / "manifest.parquet"
    study_ids = load_report_labels(reports_dir).ids
    manifest = read_manifest(manifest_file, ["image_id", "study_id"])
    splits = read_split_table(data_dir / "splits.csv", ("train",))
    stored = set(ShardReader(data_dir / "shards").keys())
    images, counts = join_pretraining(study_ids, manifest, splits, stored)
    if images.empty:
        raise MedslipError(
            f"no pretraining images: none of the {len(manifest)} images of {manifest_file} has a "
            f"study among the {len(study_ids)} of {ids_file} (and stored shards)"
        )
    for role, frame in (("images", images), ("counts", counts)):
        with atomic_path(out_dir / JOIN_FILES[role]) as tmp:
            if role == "images":
                frame.to_parquet(tmp, index=False)
            else:
                frame.to_csv(tmp, index=False)
    return counts


def apply_policy(matrix: np.ndarray, uncertain: np.ndarray, policy: str) -> np.ndarray:
    """Label matrices (N, 51, 75) int8 under an uncertainty policy.

    ``matrix`` is the official encoding (uncertain already -1); ``uncertain`` (N, 51, 75) bool
    marks uncertain mentions. ``unmentioned`` keeps the matrix (official), ``positive`` sets
    uncertain cells to 1, ``absent`` sets uncertain cells that are not present to 0.
    """
    if policy not in POLICIES:
        raise MedslipError(f"unknown uncertainty policy {policy!r} (known: {', '.join(POLICIES)})")
    out = matrix.copy()
    if policy == "positive":
        out[uncertain] = 1
    elif policy == "absent":
        out[uncertain & (out < 1)] = 0
    return out


@dataclass(frozen=True)
class PretrainTables:
    """Everything a pretraining run reads besides the images."""

    images: pd.DataFrame  # image_id, study_id, split, row
    matrices: np.ndarray  # (N_studies, 51, 75) int8 after the policy


def load_tables(join_dir: Path, reports_dir: Path, policy: str) -> PretrainTables:
    """The joined image table and the policy-applied matrices
    (:func:`~medslip.reports.outputs.load_report_labels`);
    a join whose rows or studies do not fit the report stage is an error naming both."""
    labels = load_report_labels(reports_dir)
    path = join_dir / JOIN_FILES["images"]
    try:
        images = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not a readable join table ({exc})") from None
    rows = images["row"].to_numpy()
    ids = np.asarray(labels.ids, dtype=object)
    outside = (rows < 0) | (rows >= len(ids))
    wrong = outside.copy()
    wrong[~outside] = ids[rows[~outside]] != images["study_id"].astype(str).to_numpy()[~outside]
    if wrong.any():
        first = images.iloc[int(np.argmax(wrong))]
        raise MedslipError(
            f"{path}: {int(wrong.sum())} images point at another study's row of "
            f"{reports_dir / 'report_ids.txt'} (e.g. image {first['image_id']}, study "
            f"{first['study_id']}, row {first['row']}); rerun medslip pretrain-data"
        )
    return PretrainTables(images, apply_policy(labels.matrix, labels.uncertain, policy))


class PretrainDataset(torch.utils.data.Dataset):
    """Items ``{"image": uint8 (1, H, W), "matrix": int8 (51, 75), "study": int}`` of one split
    (``study`` is the matrix row, used to look up report text embeddings)."""

    def __init__(self, shards: Path, tables: PretrainTables, split: str) -> None:
        part = tables.images[tables.images["split"] == split]
        self.reader = ShardReader(shards)
        self.keys = part["image_id"].tolist()
        self.rows = part["row"].to_numpy()
        self.matrices = tables.matrices

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict:
        row = int(self.rows[index])
        return {
            "image": torch.from_numpy(self.reader[self.keys[index]])[None],
            "matrix": torch.from_numpy(self.matrices[row]),
            "study": row,
        }


def report_embeddings_by_row(path: Path, report_ids: Path) -> torch.Tensor:
    """Report text embeddings (global_clip) aligned with the label-matrix rows: (N_studies, D).

    A study of ``report_ids`` without an embedding in ``path`` is an error naming both files.
    """
    from medslip.model.text_books import load_report_embeddings

    ids, embeddings, _ = load_report_embeddings(path)
    index = {study: i for i, study in enumerate(ids)}
    wanted = read_ids(report_ids)
    missing = [s for s in wanted if s not in index]
    if missing:
        raise MedslipError(
            f"{path}: no report embedding for {len(missing)} studies of {report_ids}, "
            f"e.g. {missing[0]}"
        )
    return embeddings[[index[s] for s in wanted]]
