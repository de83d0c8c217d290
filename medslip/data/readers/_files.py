"""Finding and reading the official tables of a dataset tree (plain or gzipped CSV)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medslip.errors import MedslipError


def official_file(root: Path, name: str) -> Path:
    """``root/name`` or ``root/name.gz``, whichever exists; a MedslipError names both if neither."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise MedslipError(f"{root}: official file {name} (or {name}.gz) not found")


def read_table(root: Path, name: str, required: list[str] = (), **kwargs) -> pd.DataFrame:
    """Read the official CSV ``name`` (plain or .gz) below ``root`` with column names stripped;
    a MedslipError naming the file if it is unreadable or lacks a ``required`` column."""
    path = official_file(root, name)
    try:
        frame = pd.read_csv(path, **kwargs)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise MedslipError(f"{path}: unreadable CSV ({exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise MedslipError(f"{path}: missing columns {missing}")
    return frame
