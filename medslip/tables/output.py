"""Writing a table: the CSV (every column, full precision) and its Markdown twin (title,
caption, and each metric as ``value [lo, hi]``), both atomically."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from medslip.atomic import write_bytes_atomic
from medslip.tables.paper import Table

ID_COLUMNS = (
    "source",
    "split",
    "dataset",
    "variant",
    "weights",
    "truth",
    "pct",
    "class",
    "target",
    "stream",
    "status",
)
"""Columns shown before the metrics in the Markdown twin (those the table has, in its order)."""


def cell(value: float, lo: float, hi: float) -> str:
    """``0.646 [0.606, 0.688]``; no interval → the value alone; no value → empty (the
    Markdown twin writes ``n/a`` for a run that has no value: undefined or not applicable)."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        return ""
    if isinstance(lo, int | float) and isinstance(hi, int | float) and math.isfinite(lo + hi):
        return f"{value:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{value:.3f}"


def markdown(table: Table) -> str:
    """The Markdown twin of ``table``."""
    frame = table.frame
    if table.metrics:
        ids = [c for c in frame.columns if c in ID_COLUMNS]
        seeds = ["n_seeds"] if "n_seeds" in frame.columns else []
    else:  # a plain table (counts): every column as it is
        ids, seeds = list(frame.columns), []
    note = ["note"] if "note" in frame.columns and table.metrics else []
    header = ids + seeds + table.metrics + note
    lines = [f"# {table.title}", "", table.caption, ""]
    if frame.empty:
        return "\n".join(lines + ["(no rows)", ""])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in frame.iterrows():
        values = [_plain(row[c]) for c in ids + seeds]
        for m in table.metrics:
            n = row.get(f"{m}_n_seeds")
            shown = cell(row[m], row[f"{m}_lo"], row[f"{m}_hi"])
            shown = shown or ("n/a" if row.get("status") == "ok" else "")
            values.append(f"{shown} (n={int(n)})" if shown and pd.notna(n) else shown)
        values += [_plain(row[c]) for c in note]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines + ["", *table.footer]) + "\n"


def _plain(value: object) -> str:
    if value is pd.NA:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:g}"
    return str(value).replace("|", "\\|")


def write_table(table: Table, csv_path: Path, md_path: Path) -> None:
    """``table`` as CSV at ``csv_path`` and Markdown at ``md_path``."""
    for path in (csv_path, md_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(csv_path, table.frame.to_csv(index=False).encode())
    write_bytes_atomic(md_path, markdown(table).encode())
