"""Checks of command-line values made before a command does any work; each error is one line
naming the flag (:class:`~medslip.errors.MedslipError`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from medslip.errors import MedslipError

if TYPE_CHECKING:
    import torch

OUTPUT_FLAGS = ("out", "out_dir", "counts", "reports_out", "csv", "md")
"""Option names (argparse ``dest``) that name a path a command writes."""


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def check_output(dest: str, path: str | Path, kind: str) -> None:
    """Refuse an output path that cannot be written: a folder above it that is a file, an
    existing file where a directory goes (``kind`` ``dir``) or a directory where a file goes
    (``file``); ``path`` may be either."""
    path = Path(path)
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise MedslipError(f"{_flag(dest)} {path}: {parent} is a file, not a directory")
    if kind == "dir" and path.exists() and not path.is_dir():
        raise MedslipError(f"{_flag(dest)} {path}: is a file, not a directory")
    if kind == "file" and path.is_dir():
        raise MedslipError(f"{_flag(dest)} {path}: is a directory, not a file")


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
        raise MedslipError(f"{_flag(dest)} {value}: must be {low} or more")


def torch_device(value: str, dest: str = "device") -> torch.device:
    """The torch device a ``--device`` value names: ``auto`` is CUDA when there is one, else the
    CPU; a CUDA device on a machine without it, or a name torch does not know, is an error."""
    import torch

    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError):
        raise MedslipError(
            f"{_flag(dest)} {value}: not a device (cpu, cuda, cuda:N or auto)"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise MedslipError(
                f"{_flag(dest)} {value}: this machine has no CUDA device torch can use; "
                "use --device cpu (or auto)"
            )
        if device.index is not None and device.index >= count:
            raise MedslipError(f"{_flag(dest)} {value}: this machine has {count} CUDA device(s)")
    elif device.type != "cpu":
        raise MedslipError(f"{_flag(dest)} {value}: not a device (cpu, cuda, cuda:N or auto)")
    return device
