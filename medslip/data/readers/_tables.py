"""Finding and reading the official tables of a dataset tree (plain or gzipped CSV)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from medslip.errors import MedslipError

log = logging.getLogger(__name__)

OFFICIAL_FRAME = 1024
"""Side in pixels of the RSNA Pneumonia and NIH ChestX-ray14 images their boxes refer to."""


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


def read_boxes(
    path: Path, table: pd.DataFrame, columns: list[str], frame: int = OFFICIAL_FRAME
) -> list[list[float] | None]:
    """The ``[x, y, w, h]`` box of each row of ``table`` (read from ``path``; ``columns`` name
    x, y, w, h), clipped to the ``frame`` x ``frame`` image; None where a row has no box or its
    box is dropped (size not positive, or wholly outside the image). Every clipped or dropped
    box is logged with file and row (1-based, header not counted) and the totals in one line;
    a non-numeric or partly missing coordinate is a MedslipError naming file and row."""
    raw = table[columns]
    values = raw.apply(pd.to_numeric, errors="coerce")
    out: list[list[float] | None] = []
    clipped = dropped = 0
    for i, (given, numbers) in enumerate(
        zip(raw.notna().to_numpy(), values.to_numpy(), strict=True)
    ):
        where = f"{path}: row {i + 1}"
        if not given.any():
            out.append(None)
            continue
        if not (given.all() and pd.notna(numbers).all()):
            shown = ", ".join(f"{c}={v!r}" for c, v in zip(columns, raw.iloc[i], strict=True))
            raise MedslipError(f"{where}: box coordinates must be numbers ({shown})")
        x, y, w, h = (float(v) for v in numbers)
        x0, y0 = max(x, 0.0), max(y, 0.0)
        x1, y1 = min(x + w, frame), min(y + h, frame)
        if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
            log.warning(
                "%s: box %s dropped (empty or outside the %dx%d image)",
                where,
                [x, y, w, h],
                frame,
                frame,
            )
            dropped += 1
            out.append(None)
            continue
        box = [x0, y0, x1 - x0, y1 - y0]
        if box != [x, y, w, h]:
            log.warning(
                "%s: box %s clipped to the %dx%d image: %s", where, [x, y, w, h], frame, frame, box
            )
            clipped += 1
        out.append(box)
    if clipped or dropped:
        log.warning("%s: %d boxes clipped, %d dropped (rows above)", path, clipped, dropped)
    return out
