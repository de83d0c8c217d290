"""Data layer: official-format readers -> one manifest schema, splits, image shards, loaders.

``ShardReader`` is exported lazily so that importing :mod:`medslip.data` stays cheap.
"""

from __future__ import annotations

__all__ = ["ShardReader"]


def __getattr__(name: str):
    if name == "ShardReader":
        from medslip.data.shards import ShardReader

        return ShardReader
    raise AttributeError(name)
