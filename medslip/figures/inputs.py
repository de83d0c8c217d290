"""Reading the inputs of a figure: every missing file is an error naming it (before anything is
drawn), tables may be empty, and numbers may be NaN."""

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
    when absent). An empty file or a header without rows gives an empty frame."""
    require([path])
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{path}: not a readable CSV table ({exc})") from None
    required = list(required)
    if frame.empty and not len(frame.columns):
        frame = pd.DataFrame(columns=required)
    missing = [c for c in required if c not in frame.columns]
    if missing and len(frame):
        raise MedslipError(f"{path}: columns {missing} are missing (it has {list(frame.columns)})")
    for column in [*missing, *optional]:
        if column not in frame.columns:
            frame[column] = float("nan")
    return frame


def numeric(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """``frame`` with ``columns`` as floats (empty cells and text such as ``n/a`` become NaN)."""
    frame = frame.copy()
    for column in columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    return frame
