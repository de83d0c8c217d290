"""Checks of command-line values made before a command does any work; each error is one line
naming the flag (:class:`~medslip.errors.MedslipError`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from medslip.errors import MedslipError

OUTPUT_FLAGS = ("out", "out_dir", "counts", "reports_out", "csv", "md")
"""Option names (argparse ``dest``) that name a path a command writes."""


def flag_name(dest: str) -> str:
    """``out_dir`` -> ``--out-dir``."""
    return "--" + dest.replace("_", "-")


def check_output(dest: str, path: str | Path, kind: str) -> None:
    """Refuse an output path that cannot be written: a folder above it that is a file, an
    existing file where a directory goes (``kind`` ``dir``) or a directory where a file goes
    (``file``); ``path`` may be either."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise MedslipError(f"{flag_name(dest)} {path}: {parent} is a file, not a directory")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise MedslipError(f"{flag_name(dest)} {path}: is a file, not a directory")
    if kind == "file" and path.is_dir():
        raise MedslipError(f"{flag_name(dest)} {path}: is a directory, not a file")


def check_outputs(args: argparse.Namespace, dirs: tuple[str, ...], either: tuple[str, ...]) -> None:
    """:func:`check_output` for every output option of ``args`` (:data:`OUTPUT_FLAGS`) that is
    given: those in ``dirs`` are directories, those in ``either`` may be a file or a directory,
    the others files."""
    for dest in OUTPUT_FLAGS:
        value = getattr(args, dest, None)
        if value is not None:
            kind = "dir" if dest in dirs else "path" if dest in either else "file"
            check_output(dest, value, kind)


def at_least(dest: str, value: int | float | None, low: int | float) -> None:
    """Refuse ``value`` below ``low`` (None: not given, nothing to check)."""
    if value is not None and value < low:
        raise MedslipError(f"{flag_name(dest)} {value}: must be {low} or more")
