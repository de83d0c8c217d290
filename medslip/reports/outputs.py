"""The output files of the report stage (``medslip parse-reports``): triplets, per-study 51×75
label matrices and uncertain masks, class labels; one chunk written, or chunks gathered.

Output directory layout (every file written to a temporary name and renamed, so a crash never
leaves a partial file):

* ``triplets.parquet``: one row per triplet: report_id, sentence, start, end, pathology, anatomy,
  presence, lemma;
* ``label_matrix.npy``: int8 array (N, 51, 75) indexed ``[report, landmark, entity]`` (vocab order);
  present 1, absent 0, uncertain and unmentioned -1 (the official encoding); present beats absent;
* ``uncertain_mask.npy``: bool array (N, 51, 75), True where the report mentions that entity at
  that landmark as uncertain (so a training policy can tell uncertain from unmentioned);
* ``report_ids.txt``: the N report ids (MIMIC: the manifest's ``study_id``), row i ↔
  ``label_matrix[i]`` ↔ ``uncertain_mask[i]``;
* ``labels_chestxray14.parquet`` (report_id + 14 int8 columns) and ``labels_chexpert.parquet``
  (report_id + 14 float columns, 1.0/0.0/-1.0/NaN);
* ``skipped.csv`` (report_id, source, reason) and ``counts.json`` (reports read, parsed, skipped,
  triplets, and of the skipped ones those not in English, those from which nothing was
  extracted and those without an id: :data:`FLAGGED`).

Every file is per report, so chunk directories are gathered by concatenating them in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medslip.atomic import atomic_path
from medslip.errors import MedslipError
from medslip.labels import Triplet, chestxray14_from_triplets, chexpert_from_triplets
from medslip.layout import REPORT_FILES  # the file names' one owner
from medslip.reports.readers import Skipped, require_unique_ids
from medslip.vocab import (
    ABSENT,
    CHESTXRAY14_CLASSES,
    CHEXPERT_CLASSES,
    ENTITIES,
    ENTITY_INDEX,
    LANDMARK_INDEX,
    LANDMARKS,
    PRESENT,
    UNCERTAIN,
)

FLAGGED = {
    "reports_not_english": "not English",
    "reports_nothing_extracted": "nothing extracted",
    "reports_without_id": "no report id",
}
"""Counts of ``counts.json`` beside ``reports_skipped``: skipped reports by the start of their
reason (each listed in ``skipped.csv``)."""

TRIPLET_COLUMNS = (
    "report_id",
    "sentence",
    "start",
    "end",
    "pathology",
    "anatomy",
    "presence",
    "lemma",
)


def label_matrix(triplets: Iterable[Triplet]) -> np.ndarray:
    """One study's (51, 75) int8 matrix: -1 everywhere, present → 1, absent → max(cell, 0)."""
    m = np.full((len(LANDMARKS), len(ENTITIES)), -1, dtype=np.int8)
    for t in triplets:
        j, k = LANDMARK_INDEX[t.anatomy], ENTITY_INDEX[t.pathology]
        if t.presence == PRESENT:
            m[j, k] = 1
        elif t.presence == ABSENT:
            m[j, k] = max(m[j, k], 0)
    return m


def uncertain_mask(triplets: Iterable[Triplet]) -> np.ndarray:
    """One study's (51, 75) bool mask: True where some mention is uncertain."""
    m = np.zeros((len(LANDMARKS), len(ENTITIES)), dtype=bool)
    for t in triplets:
        if t.presence == UNCERTAIN:
            m[LANDMARK_INDEX[t.anatomy], ENTITY_INDEX[t.pathology]] = True
    return m


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array)


def write_outputs(
    out_dir: Path,
    parsed: Sequence[tuple[str, list[Triplet]]],
    skipped: Sequence[Skipped],
) -> dict:
    """Write every output file for ``parsed`` (report id, triplets) in order; returns the counts."""
    ids = [rid for rid, _ in parsed]
    rows = [(rid, *(getattr(t, c) for c in TRIPLET_COLUMNS[1:])) for rid, ts in parsed for t in ts]
    triplets = pd.DataFrame(rows, columns=list(TRIPLET_COLUMNS)).astype(
        {"sentence": "int32", "start": "int32", "end": "int32"}
    )
    shape = (len(parsed), len(LANDMARKS), len(ENTITIES))
    matrices = np.empty(shape, dtype=np.int8)
    uncertain = np.empty(shape, dtype=bool)
    for i, (_, ts) in enumerate(parsed):
        matrices[i] = label_matrix(ts)
        uncertain[i] = uncertain_mask(ts)
    cxr14 = pd.DataFrame(
        [chestxray14_from_triplets(ts) for _, ts in parsed], columns=list(CHESTXRAY14_CLASSES)
    ).astype("int8")
    chexpert = pd.DataFrame(
        [chexpert_from_triplets(ts) for _, ts in parsed], columns=list(CHEXPERT_CLASSES)
    ).astype("float32")
    cxr14.insert(0, "report_id", ids)
    chexpert.insert(0, "report_id", ids)
    skipped_df = pd.DataFrame(
        [(s.report_id, s.source, s.reason) for s in skipped],
        columns=["report_id", "source", "reason"],
    )
    counts = {
        "reports_read": len(parsed) + len(skipped),
        "reports_parsed": len(parsed),
        "reports_skipped": len(skipped),
        "triplets": len(triplets),
    } | {key: sum(s.reason.startswith(start) for s in skipped) for key, start in FLAGGED.items()}
    arrays = {"label_matrix.npy": matrices, "uncertain_mask.npy": uncertain}
    _write_files(out_dir, ids, triplets, arrays, cxr14, chexpert, skipped_df, counts)
    return counts


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


def read_ids(path: Path) -> list[str]:
    """The ids of ``report_ids.txt``, one a line; a blank line, spaces around an id or an id
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
        if not line.strip() or line != line.strip():
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
    ids = read_ids(ids_path)
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
            f"{int(matrix[row, landmark, entity])} at row {row} (0-based; report "
            f"{ids[row] if row < len(ids) else '?'}: {LANDMARKS[landmark]}, {ENTITIES[entity]})"
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


def gather_outputs(chunk_dirs: Sequence[Path], out_dir: Path) -> dict:
    """Concatenate chunk output directories in order into ``out_dir``; returns the counts.

    Each chunk is read with :func:`load_report_labels`; a report id in two chunks is an error.
    The result is identical to a one-chunk run.
    """

    def concat(name: str, read) -> pd.DataFrame:
        return pd.concat([read(d / name) for d in chunk_dirs], ignore_index=True)

    chunk_counts = []
    for chunk_dir in chunk_dirs:
        if not (chunk_dir / "counts.json").is_file():
            raise MedslipError(f"{chunk_dir}: not a parse-reports output directory")
        chunk_counts.append(json.loads((chunk_dir / "counts.json").read_text()))
    counts = {key: sum(c.get(key, 0) for c in chunk_counts) for key in chunk_counts[0]}
    chunks = [load_report_labels(d) for d in chunk_dirs]
    ids = [rid for chunk in chunks for rid in chunk.ids]
    skipped = concat("skipped.csv", lambda p: pd.read_csv(p, dtype=str, keep_default_na=False))
    require_unique_ids(
        [*ids, *skipped["report_id"]], f"{out_dir}: gathering {', '.join(map(str, chunk_dirs))}"
    )
    _write_files(
        out_dir,
        ids,
        concat("triplets.parquet", pd.read_parquet),
        {
            "label_matrix.npy": np.concatenate([chunk.matrix for chunk in chunks]),
            "uncertain_mask.npy": np.concatenate([chunk.uncertain for chunk in chunks]),
        },
        concat("labels_chestxray14.parquet", pd.read_parquet),
        concat("labels_chexpert.parquet", pd.read_parquet),
        skipped,
        counts,
    )
    return counts


def _write_files(
    out_dir: Path,
    ids: list[str],
    triplets: pd.DataFrame,
    arrays: dict[str, np.ndarray],
    cxr14: pd.DataFrame,
    chexpert: pd.DataFrame,
    skipped: pd.DataFrame,
    counts: dict,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {
        "triplets.parquet": lambda p: triplets.to_parquet(p, index=False),
        "label_matrix.npy": lambda p: _save_npy(p, arrays["label_matrix.npy"]),
        "uncertain_mask.npy": lambda p: _save_npy(p, arrays["uncertain_mask.npy"]),
        "report_ids.txt": lambda p: p.write_text("".join(f"{i}\n" for i in ids)),
        "labels_chestxray14.parquet": lambda p: cxr14.to_parquet(p, index=False),
        "labels_chexpert.parquet": lambda p: chexpert.to_parquet(p, index=False),
        "skipped.csv": lambda p: skipped.to_csv(p, index=False),
        "counts.json": lambda p: p.write_text(json.dumps(counts, indent=1) + "\n"),
    }
    assert tuple(writers) == REPORT_FILES
    for name, write in writers.items():
        with atomic_path(out_dir / name) as tmp:
            write(tmp)
