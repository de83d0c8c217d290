"""Reading the inputs of a figure: every missing, headerless or garbled file is an error naming
it (before anything is drawn); tables may have no rows, and numbers may be NaN."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from medslip.errors import MedslipError


def require(paths: Iterable[str | Path]) -> None:
    """Raise naming the first of ``paths`` that is not a file."""
    for path in paths:
        if not Path(path).is_file():
            raise MedslipError(f"{path}: no such input file")


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object; a missing or unreadable file is an error naming it."""
    require([path])
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(value, dict):
        raise MedslipError(f"{path}: not a JSON object")
    return value


def read_table(
    path: str | Path, required: Iterable[str], optional: Iterable[str] = ()
) -> pd.DataFrame:
    """A CSV table with at least the ``required`` columns (``optional`` ones are added as NaN
    when absent); it may have no rows, but a file without a header, or without a required
    column, is an error naming it."""
    require([path])
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise MedslipError(f"{path}: empty file, not a CSV table (no header)") from None
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not a readable CSV table ({exc})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MedslipError(f"{path}: columns {missing} are missing (it has {list(frame.columns)})")
    for column in optional:
        if column not in frame.columns:
            frame[column] = float("nan")
    return frame


def numeric(frame: pd.DataFrame, columns: Iterable[str], path: str | Path) -> pd.DataFrame:
    """``frame`` (read from ``path``) with ``columns`` as floats: empty cells and ``n/a``
    become NaN, any other text is an error naming the file, column and row."""
    frame = frame.copy()
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce").astype(float)
        text = frame[column].astype(str).str.strip()
        bad = values.isna() & frame[column].notna() & ~text.isin(["", "n/a", "nan", "NaN"])
        if bad.any():
            row = frame.index[bad.to_numpy().nonzero()[0][0]]  # read_csv's: file row - 1
            raise MedslipError(
                f"{path}: row {row + 1}: {column} {frame[column].loc[row]!r} is not a number"
            )
        frame[column] = values
    return frame
