"""Atomic file writes: write to a temporary path in the same directory, then ``os.replace``.

The temporary name ``.<stem>.tmp<pid><suffix>`` holds the writer's process id, so a later write
of the same file removes what a killed writer left behind (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def _temp_name(path: Path) -> tuple[str, str]:
    """The temporary name of ``path`` around the writer's pid: ``.<stem>.tmp`` and the suffix
    (kept for writers that choose the format by it: matplotlib, LMDB/Parquet shards)."""
    return f".{path.stem}.tmp", path.suffix


def _temp_path(path: Path, pid: int) -> Path:
    prefix, suffix = _temp_name(path)
    return path.with_name(f"{prefix}{pid}{suffix}")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temporary files of ``path`` left by writers that no longer run (killed
    mid-write) and return them; those of a live process are kept."""
    path = Path(path)
    prefix, suffix = _temp_name(path)
    pattern = re.compile(re.escape(prefix) + r"(\d+)" + re.escape(suffix))
    stale = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name)
            if match and entry.is_file() and not _alive(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                log.info("removed %s, left by an interrupted run", entry.path)
                stale.append(Path(entry.path))
    return stale


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is
    removed (so nothing half-written is ever left under the final name). Temporary files of
    ``path`` that killed writers left behind are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = _temp_path(path, os.getpid())
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def follow_umask(path: str | Path) -> None:
    """Give a file the mode the umask asks for, like ``open`` does (safetensors' writer makes
    its files 0600 whatever the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
