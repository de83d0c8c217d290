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
from medslip.train.files import JOIN_FILES
from medslip.vocab import ENTITIES, LANDMARKS

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


@dataclass(frozen=True)
class ReportLabels:
    """The report stage's label matrices, checked (:func:`load_report_labels`)."""

    ids: list[str]  # report_ids.txt: row i of the matrices is the study ids[i]
    matrix: np.ndarray  # (N, 51, 75) int8 in {-1, 0, 1}
    uncertain: np.ndarray  # (N, 51, 75) bool


def _read_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise MedslipError(f"{path}: missing; was the report stage run?") from None
        raise MedslipError(f"{path}: not a readable .npy array ({exc})") from None


def _read_ids(path: Path) -> list[str]:
    """The ids of ``report_ids.txt``, one a line; a blank line, a space inside a line or an id
    given twice is an error naming the line (each would shift rows against the matrices)."""
    try:
        lines = path.read_text().split("\n")
    except FileNotFoundError:
        raise MedslipError(f"{path}: missing; was the report stage run?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MedslipError(f"{path}: not a readable id list ({exc})") from None
    if lines and lines[-1] == "":
        lines.pop()
    first: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line != line.strip() or len(line.split()) != 1:
            raise MedslipError(f"{path}: line {number}: {line!r} is not one report id")
        if line in first:
            raise MedslipError(
                f"{path}: line {number}: report id {line} already on line {first[line]}"
            )
        first[line] = number
    return lines


def load_report_labels(reports_dir: Path) -> ReportLabels:
    """``report_ids.txt``, ``label_matrix.npy`` and ``uncertain_mask.npy`` of a report-stage
    directory, checked against each other and the vocabulary (:mod:`medslip.vocab`): one
    unique id per matrix row, (N, 51, 75) int8 matrices in {-1, 0, 1}, a bool uncertain mask of
    the same shape, and (when ``labels_chexpert.parquet`` is there) the same ids in the same
    order as that table. Anything else is an error naming the file and the problem."""
    ids_path = reports_dir / "report_ids.txt"
    matrix_path = reports_dir / "label_matrix.npy"
    mask_path = reports_dir / "uncertain_mask.npy"
    ids = _read_ids(ids_path)
    matrix, uncertain = _read_array(matrix_path), _read_array(mask_path)
    shape = (len(LANDMARKS), len(ENTITIES))
    if matrix.ndim != 3 or matrix.shape[1:] != shape:
        raise MedslipError(
            f"{matrix_path}: shape {matrix.shape}, expected (N, {shape[0]}, {shape[1]}) "
            f"(reports x {len(LANDMARKS)} landmarks x {len(ENTITIES)} entities of medslip.vocab)"
        )
    if matrix.dtype != np.int8:
        raise MedslipError(f"{matrix_path}: dtype {matrix.dtype}, expected int8")
    bad = ~np.isin(matrix, (-1, 0, 1))
    if bad.any():
        row, landmark, entity = (int(i[0]) for i in np.nonzero(bad))
        raise MedslipError(
            f"{matrix_path}: {int(bad.sum())} values not in {{-1, 0, 1}}, e.g. "
            f"{int(matrix[row, landmark, entity])} at row {row} "
            f"({LANDMARKS[landmark]}, {ENTITIES[entity]})"
        )
    if len(ids) != len(matrix):
        raise MedslipError(
            f"{ids_path}: {len(ids)} report ids for the {len(matrix)} rows of {matrix_path}"
        )
    if uncertain.shape != matrix.shape or uncertain.dtype != np.bool_:
        raise MedslipError(
            f"{mask_path}: {uncertain.dtype} {uncertain.shape}, expected bool {matrix.shape} "
            f"like {matrix_path.name}"
        )
    _same_order(ids, ids_path, reports_dir / "labels_chexpert.parquet")
    return ReportLabels(ids, matrix, uncertain)


def _same_order(ids: list[str], ids_path: Path, table: Path) -> None:
    """Error naming both files when ``table``'s report_id column is not ``ids`` in order (an
    id list edited or shifted by itself); nothing when the table is not there."""
    if not table.is_file():
        return
    try:
        listed = pd.read_parquet(table, columns=["report_id"])["report_id"].astype(str).tolist()
    except (OSError, ValueError, KeyError) as exc:
        raise MedslipError(f"{table}: not a readable label table ({exc})") from None
    if listed != ids:
        line = next(
            (i for i, (a, b) in enumerate(zip(ids, listed, strict=False)) if a != b),
            min(len(ids), len(listed)),
        )
        theirs = listed[line] if line < len(listed) else "nothing"
        ours = ids[line] if line < len(ids) else "nothing"
        raise MedslipError(
            f"{ids_path}: line {line + 1} is {ours} but row {line + 1} of {table} is {theirs}: "
            "the id list no longer matches the matrices it was written with"
        )


def write_join(reports_dir: Path, data_dir: Path, out_dir: Path) -> pd.DataFrame:
    """Run :func:`join_pretraining` on the stage outputs and write :data:`JOIN_FILES`.

    The report stage is read with :func:`load_report_labels`; zero joined images is an error
    naming the label and image files.
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
    """The joined image table and the policy-applied matrices (:func:`load_report_labels`);
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
    from medslip.model.text import load_report_embeddings

    ids, embeddings, _ = load_report_embeddings(path)
    index = {study: i for i, study in enumerate(ids)}
    wanted = _read_ids(report_ids)
    missing = [s for s in wanted if s not in index]
    if missing:
        raise MedslipError(
            f"{path}: no report embedding for {len(missing)} studies of {report_ids}, "
            f"e.g. {missing[0]}"
        )
    return embeddings[[index[s] for s in wanted]]
