"""File hashes: of a file's bytes (as ``sha256sum`` prints it), and the run inputs' hash of a
file or folder (names and bytes), which model.json records. A base module: standard library
only."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1 << 20
"""Bytes read at a time."""


def _feed(digest, path: Path) -> None:
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    _feed(digest, path)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, or of every file below a directory (sorted relative names): each
    file's name (relative to ``path``) then its bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        _feed(digest, file)
    return digest.hexdigest()
