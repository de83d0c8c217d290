"""Finding and reading the official tables of a dataset tree (plain or gzipped CSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medslip.errors import MedslipError


def official_file(root: Path, name: str) -> Path:
    """``root/name`` or ``root/name.gz``, whichever exists; a MedslipError names both if neither."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise MedslipError(f"{root}: official file {name} (or {name}.gz) not found")


def read_table(
    root: Path, name: str, required: list[str] = (), allow_empty: bool = False, **kwargs
) -> pd.DataFrame:
    """Read the official CSV ``name`` (plain or .gz) below ``root`` with column names stripped;
    a MedslipError naming the file if it is unreadable, lacks a ``required`` column or (unless
    ``allow_empty``) has no rows."""
    path = official_file(root, name)
    try:
        frame = pd.read_csv(path, **kwargs)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise MedslipError(f"{path}: unreadable CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MedslipError(f"{path}: missing columns {missing}")
    if frame.empty and not allow_empty:
        raise MedslipError(f"{path}: no rows")
    return frame


def require_values(path: Path, table: pd.DataFrame, column: str) -> None:
    """MedslipError naming ``path``, ``column`` and the rows (1-based, header not counted)
    where ``column`` is blank: an id that is not there would merge or drop rows silently."""
    blank = table[column].isna() | (table[column].astype(str).str.strip() == "")
    if blank.any():
        rows = [int(i) + 1 for i in blank.to_numpy().nonzero()[0]]
        shown = ", ".join(map(str, rows[:5])) + (
            f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        )
        raise MedslipError(f"{path}: {column} is blank in row(s) {shown}")


def read_boxes(path: Path, table: pd.DataFrame, columns: list[str]) -> list[list[float] | None]:
    """The ``[x, y, w, h]`` box of each row of ``table`` (read from ``path``; ``columns`` name
    x, y, w, h), None where a row has no box. A non-numeric or partly missing coordinate, or a
    width or height that is not positive, is a MedslipError naming file and row (1-based,
    header not counted). Whether a box lies inside its image is checked where the image is
    decoded (:func:`medslip.data.preprocess.process_row`), against the image's own size."""
    raw = table[columns]
    values = raw.apply(pd.to_numeric, errors="coerce")
    out: list[list[float] | None] = []
    for i, (given, numbers) in enumerate(
        zip(raw.notna().to_numpy(), values.to_numpy(), strict=True)
    ):
        if not given.any():
            out.append(None)
            continue
        shown = ", ".join(f"{c}={v!r}" for c, v in zip(columns, raw.iloc[i], strict=True))
        if not (given.all() and np.isfinite(numbers.astype(float)).all()):
            raise MedslipError(f"{path}: row {i + 1}: box coordinates must be numbers ({shown})")
        x, y, w, h = (float(v) for v in numbers)
        if w <= 0 or h <= 0:
            raise MedslipError(f"{path}: row {i + 1}: box width and height must be > 0 ({shown})")
        out.append([x, y, w, h])
    return out
