"""The one manifest schema every source reader produces (one row per image, Parquet on disk).

Columns:

- ``image_id`` (str, unique within a dataset): the official image identifier (dicom_id, Image
  Index without ``.png``, patientId, ImageId, IU file name, COVID file name).
- ``dataset`` (str): the reader's name (``mimic_cxr_jpg``, ``nih_cxr14``, ...).
- ``study_id``, ``patient_id`` (str): "" when the source has none (then the image is its own study).
- ``split`` (str): the official split (``train`` / ``val`` / ``test``), "" where none is published.
- ``view`` (str): ``PA``, ``AP``, ``LATERAL``, ``LL`` ... as the source spells it, "" if unknown.
- ``path`` (str): image path relative to the dataset root.
- ``width``, ``height`` (int32): source size in pixels when the metadata gives it, else 0.
- ``labels`` (str): JSON object class -> 1.0 / 0.0 / -1.0 (uncertain) / null (not mentioned).
- ``boxes`` (str): JSON list of ``[label, x, y, w, h]`` in source pixel coordinates.
- ``mask_rle`` (list<str>): SIIM relative column-major RLE strings (``medslip.rle``), [] if none.
- ``mask_path`` (str): a binary mask image, relative to the root; ``A.zip!member`` for a member
  of a zip archive; "" if none.
- ``report`` (str): where the report is: a path relative to the root, or ``file.csv#key=value``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from medslip.atomic import atomic_path
from medslip.errors import MedslipError

SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("dataset", pa.string()),
        ("study_id", pa.string()),
        ("patient_id", pa.string()),
        ("split", pa.string()),
        ("view", pa.string()),
        ("path", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("labels", pa.string()),
        ("boxes", pa.string()),
        ("mask_rle", pa.list_(pa.string())),
        ("mask_path", pa.string()),
        ("report", pa.string()),
    ]
)
COLUMNS = SCHEMA.names
SPLITS = ("train", "val", "test")
_DEFAULTS = {
    "study_id": "",
    "patient_id": "",
    "split": "",
    "view": "",
    "width": 0,
    "height": 0,
    "labels": "{}",
    "boxes": "[]",
    "mask_path": "",
    "report": "",
}


def labels_json(values: dict[str, float | None]) -> str:
    """Encode a class -> value mapping (NaN becomes null) as the ``labels`` column."""
    clean = {k: (None if v is None or v != v else float(v)) for k, v in values.items()}
    return json.dumps(clean, sort_keys=False)


def make_manifest(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Fill defaults, order and type the columns, and check ``image_id`` uniqueness and splits."""
    frame = frame.copy()
    frame["dataset"] = dataset
    for column, default in _DEFAULTS.items():
        if column not in frame:
            frame[column] = default
        frame[column] = frame[column].fillna(default)
    if "mask_rle" not in frame:
        frame["mask_rle"] = [[] for _ in range(len(frame))]
    missing = {"image_id", "path"} - set(frame)
    if missing:
        raise MedslipError(f"{dataset} manifest: missing columns {sorted(missing)}")
    for column in ("image_id", "study_id", "patient_id", "split", "view", "path"):
        frame[column] = frame[column].astype(str)
    dupes = frame["image_id"][frame["image_id"].duplicated()]
    if len(dupes):
        raise MedslipError(f"{dataset} manifest: duplicate image ids, e.g. {dupes.iloc[0]!r}")
    bad = set(frame["split"]) - {"", *SPLITS}
    if bad:
        raise MedslipError(f"{dataset} manifest: unknown split names {sorted(bad)}")
    frame = frame[COLUMNS].sort_values("image_id", kind="stable").reset_index(drop=True)
    return frame


def write_manifest(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a manifest (as made by :func:`make_manifest`) to Parquet atomically."""
    table = pa.Table.from_pandas(frame[COLUMNS], schema=SCHEMA, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_manifest(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a manifest Parquet file, checking that it has the manifest schema (with
    ``columns``: only those columns, checking that it has them)."""
    try:
        names = pq.read_schema(path).names
        if columns is not None and not set(columns) <= set(names):
            missing = sorted(set(columns) - set(names))
            raise MedslipError(f"{path}: not a manifest: columns {missing} are missing")
        table = pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid) as exc:
        raise MedslipError(f"{path}: not a readable manifest ({exc})") from None
    if columns is None and table.schema.names != COLUMNS:
        raise MedslipError(f"{path}: columns {table.schema.names} are not the manifest schema")
    return table.to_pandas()
