"""Output names of the data stage, shared by the code and the workflow rules (this module
imports nothing but the standard library, so the Snakefile can read it without medslip's
dependencies installed).

Layout: ``results/data/{dataset}/`` holds the manifest, ``splits.csv`` (whose training-subset
columns are named by :func:`subset_column`) and ``shards/`` with the files of
:func:`shard_files` for every shard and the :data:`GATHERED` files beside them.
"""

from __future__ import annotations

BACKENDS = ("lmdb", "parquet")
"""Shard storage backends (config ``data.backend``)."""
SUFFIX = {"lmdb": ".lmdb", "parquet": ".parquet"}
"""File suffix of a shard, by backend."""

SIDECARS: dict[str, str] = {
    "index": ".index.parquet",
    "quarantine": ".quarantine.csv",
    "counts": ".json",
}
"""Side files of one shard ``<stem><suffix>``: per-image geometry and boxes, quarantined images,
counts and sha256."""
GATHERED: dict[str, str] = {
    "summary": "summary.json",
    "index": "index.parquet",
    "quarantine": "quarantine.csv",
}
"""Files the gather step writes beside the shards: the shard summary (settings, counts, per-shard
file and sha256), the per-image index and the quarantine table."""


def shard_stem(index: int | str) -> str:
    """Stem of shard ``index``: ``shard-00003`` (a string is used as is, e.g. a wildcard)."""
    return f"shard-{index:05d}" if isinstance(index, int) else f"shard-{index}"


def shard_files(index: int | str, backend: str) -> dict[str, str]:
    """File names of shard ``index``: ``{"shard": "shard-00003.lmdb", "index": ..., ...}``."""
    stem = shard_stem(index)
    return {"shard": stem + SUFFIX[backend]} | {k: stem + v for k, v in SIDECARS.items()}


def subset_column(fraction: float) -> str:
    """Column name of a training subset in ``splits.csv``, e.g. ``subset_1pct`` or
    ``subset_100pct``."""
    pct = fraction * 100
    return f"subset_{pct:g}pct"
