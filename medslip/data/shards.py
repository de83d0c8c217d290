"""Image shards: raw uint8 grayscale pixels (plus optional uint8 {0,1} masks) keyed by image id.

Two backends behind one reader:

- LMDB (default, ``*.lmdb``, one file): ``i:<key>`` / ``m:<key>`` -> 4-byte header (uint16 H, W,
  big-endian) + H*W bytes; ``__keys__`` -> JSON list of keys in write order.
- Parquet (``*.parquet``): columns ``key``, ``height``, ``width``, ``pixels`` (binary), ``mask``
  (binary, null when none), written in row groups of 4096 as they come; a reader loads the
  table into memory once and slices rows from its buffers.

``reader[key]`` and ``reader.mask(key)`` return a new, writable array with either backend.

:class:`ShardWriter` writes to a temporary file and renames it on success, so a shard either
exists complete or not at all. :class:`ShardReader` reads one shard file or a directory of them
(the output of ``medslip preprocess``); LMDB environments are opened lazily in each process, so
a reader can be handed to DataLoader workers.
"""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import numpy as np

from medslip.atomic import atomic_path
from medslip.errors import MedslipError

# Every file name of a shard directory is defined once, in medslip.layout (which the
# workflow reads without numpy); re-exported here for the code that writes and reads shards.
from medslip.layout import (  # noqa: F401
    BACKENDS,
    GATHERED,
    SIDECARS,
    SUFFIX,
    shard_files,
    shard_stem,
)

_HEADER = struct.Struct(">HH")
_KEYS = b"__keys__"
_SHARD_NAME = re.compile(r"shard-\d+\.(lmdb|parquet)")  # not the .index.parquet sidecars


def sidecar(shard: Path, kind: str) -> Path:
    """The ``kind`` side file (a key of ``SIDECARS``) of the shard file ``shard``."""
    return shard.with_name(shard.name.removesuffix(shard.suffix) + SIDECARS[kind])


_MAP_SIZE = 1 << 40  # LMDB address space only; the file grows with the data


def backend_of(path: Path) -> str:
    """The backend of a shard file, from its suffix."""
    for backend, suffix in SUFFIX.items():
        if path.name.endswith(suffix):
            return backend
    raise MedslipError(f"{path}: not a shard (expected a {' or '.join(SUFFIX.values())} file)")


def _pack(array: np.ndarray) -> bytes:
    height, width = array.shape
    return _HEADER.pack(height, width) + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _unpack(buffer) -> np.ndarray:
    height, width = _HEADER.unpack_from(buffer)
    return np.frombuffer(buffer, dtype=np.uint8, count=height * width, offset=4).reshape(
        height, width
    )


class ShardWriter:
    """Write one shard atomically: ``with ShardWriter(path) as w: w.add(key, pixels, mask)``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.backend = backend_of(self.path)
        self.keys: list[str] = []
        self.masks = 0
        self._rows: dict[str, list] = {name: [] for name in _PARQUET_COLUMNS}

    def __enter__(self) -> ShardWriter:
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        if self.backend == "lmdb":
            import lmdb

            try:
                self._env = lmdb.open(str(self._tmp), subdir=False, map_size=_MAP_SIZE, lock=False)
            except lmdb.Error as exc:
                self._atomic.__exit__(type(exc), exc, None)
                raise MedslipError(f"{self.path}: cannot write the shard ({exc})") from None
            self._txn = self._env.begin(write=True)
        else:
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(self._tmp, _parquet_schema(), compression="none")
        return self

    def add(self, key: str, pixels: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Store an (H, W) uint8 image and optionally its (H, W) uint8 {0,1} mask."""
        if pixels.dtype != np.uint8 or pixels.ndim != 2:
            raise MedslipError(f"shard {self.path}: {key}: pixels must be (H, W) uint8")
        self.keys.append(key)
        self.masks += mask is not None
        if self.backend == "lmdb":
            self._txn.put(b"i:" + key.encode(), _pack(pixels))
            if mask is not None:
                self._txn.put(b"m:" + key.encode(), _pack(mask))
            if len(self.keys) % 512 == 0:
                self._txn.commit()
                self._txn = self._env.begin(write=True)
            return
        self._rows["key"].append(key)
        self._rows["height"].append(pixels.shape[0])
        self._rows["width"].append(pixels.shape[1])
        self._rows["pixels"].append(np.ascontiguousarray(pixels).tobytes())
        self._rows["mask"].append(None if mask is None else np.ascontiguousarray(mask).tobytes())
        if len(self._rows["key"]) == _ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered rows as one Parquet row group."""
        import pyarrow as pa

        if self._rows["key"]:
            self._parquet.write_table(pa.table(self._rows, schema=_parquet_schema()))
            self._rows = {name: [] for name in _PARQUET_COLUMNS}

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None:
                if len(set(self.keys)) != len(self.keys):
                    raise MedslipError(f"shard {self.path}: duplicate keys")
                self._finish()
        finally:
            if self.backend == "lmdb":
                self._env.close()
            else:
                self._parquet.close()
            self._atomic.__exit__(kind, value, tb)

    def _finish(self) -> None:
        if self.backend == "lmdb":
            self._txn.put(_KEYS, json.dumps(self.keys).encode())
            self._txn.commit()
            self._env.sync(True)
        else:
            self._flush()


_PARQUET_COLUMNS = ("key", "height", "width", "pixels", "mask")
_ROW_GROUP = 4096


def _parquet_schema():
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("height", pa.int32()),
            ("width", pa.int32()),
            ("pixels", pa.large_binary()),
            ("mask", pa.large_binary()),
        ]
    )


# Read-only LMDB environments of this process, by path: py-lmdb refuses to open one file twice
# in a process, and an environment must not be used across fork(), so a forked child closes its
# inherited copies (the parent's stay open) and opens its own on first use.
_LMDB_OPEN: dict[tuple[str, int], tuple] = {}


def _lmdb_read_txn(path: Path, inode: int):
    """The (cached) read transaction on the LMDB shard file ``path`` (with inode ``inode``, so
    a shard rewritten at the same path is a different one) for this process."""
    key = (str(path), inode)
    if key not in _LMDB_OPEN:
        import lmdb

        try:
            env = lmdb.open(
                key[0], subdir=False, readonly=True, lock=False, readahead=False, meminit=False
            )
        except lmdb.Error as exc:
            raise MedslipError(f"{path}: unreadable LMDB shard ({exc})") from None
        _LMDB_OPEN[key] = (env, env.begin(buffers=True))
    return _LMDB_OPEN[key][1]


def _close_inherited_lmdb() -> None:
    for env, _ in _LMDB_OPEN.values():
        env.close()
    _LMDB_OPEN.clear()


os.register_at_fork(after_in_child=_close_inherited_lmdb)


class _LmdbShard:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.inode = path.stat().st_ino
        raw = self._read(_KEYS)
        if raw is None:
            raise MedslipError(f"{path}: LMDB shard without its key list (not a medslip shard?)")
        self.keys = json.loads(bytes(raw))

    def _read(self, key: bytes):
        """The stored value of ``key`` (a buffer) or None; a damaged file is a MedslipError."""
        import lmdb

        try:
            return _lmdb_read_txn(self.path, self.inode).get(key)
        except lmdb.Error as exc:
            raise MedslipError(f"{self.path}: damaged LMDB shard ({exc})") from None

    def get(self, prefix: bytes, key: str) -> np.ndarray | None:
        value = self._read(prefix + key.encode())
        return None if value is None else _unpack(value).copy()


class _ParquetShard:
    def __init__(self, path: Path) -> None:
        import pyarrow.parquet as pq

        self.path = path
        try:
            table = pq.read_table(path)
        except OSError as exc:
            raise MedslipError(f"{path}: unreadable Parquet shard ({exc})") from None
        self.keys = table.column("key").to_pylist()
        self._row = {k: i for i, k in enumerate(self.keys)}
        self._height = table.column("height").to_numpy()
        self._width = table.column("width").to_numpy()
        # Per column, per chunk (row group): value offsets, data buffer, validity; rows are found
        # by (chunk, row within chunk), so the table is never copied into one chunk.
        self._columns = {}
        for prefix, name in ((b"i:", "pixels"), (b"m:", "mask")):
            self._columns[prefix] = [
                (
                    np.frombuffer(
                        chunk.buffers()[1],
                        dtype=np.int64,
                        count=len(chunk) + 1,
                        offset=chunk.offset * 8,
                    ),
                    chunk.buffers()[2],
                    chunk.is_valid().to_numpy(zero_copy_only=False),
                )
                for chunk in table.column(name).chunks
            ]
        lengths = [len(chunk) for chunk in table.column("pixels").chunks]
        self._chunk = np.repeat(np.arange(len(lengths)), lengths)
        self._start = np.repeat(np.cumsum([0, *lengths[:-1]]), lengths)

    def __getstate__(self) -> dict:
        return {"path": self.path}  # re-map the file in the receiving process

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def get(self, prefix: bytes, key: str) -> np.ndarray | None:
        row = self._row[key]
        offsets, data, valid = self._columns[prefix][self._chunk[row]]
        local = row - self._start[row]
        if not valid[local]:
            return None
        start, end = int(offsets[local]), int(offsets[local + 1])
        shape = (int(self._height[row]), int(self._width[row]))
        pixels = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        return pixels.reshape(shape).copy()


class ShardReader:
    """Random access to shards: ``len(r)``, ``r.keys()`` (or ``iter(r)``), ``r[key]`` -> (H, W)
    uint8, ``r.mask(key)`` -> (H, W) uint8 {0,1} or None.

    ``path`` is one shard file or a directory of shards (its ``summary.json`` lists them in
    order; without one, every shard file in it, sorted by name).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if path.is_dir():
            listing = path / GATHERED["summary"]
            if listing.is_file():
                files = [path / s["file"] for s in json.loads(listing.read_text())["shards"]]
            else:
                files = sorted(f for f in path.iterdir() if _SHARD_NAME.fullmatch(f.name))
            if not files:
                raise MedslipError(f"{path}: no shard files in this directory")
        elif path.is_file():
            files = [path]
        else:
            raise MedslipError(f"{path}: no such shard or shard directory")
        self.path = path
        self._shards = [
            (_LmdbShard if backend_of(f) == "lmdb" else _ParquetShard)(f) for f in files
        ]
        self._where: dict[str, int] = {}
        for index, shard in enumerate(self._shards):
            for key in shard.keys:
                if key in self._where:
                    raise MedslipError(f"{path}: key {key!r} is in two shards")
                self._where[key] = index

    def __len__(self) -> int:
        return len(self._where)

    def keys(self) -> list[str]:
        """Every key, shard by shard in write order."""
        return list(self._where)

    def __contains__(self, key: str) -> bool:
        return key in self._where

    def __iter__(self):
        """Iterates over the keys, like a mapping."""
        return iter(self._where)

    def _shard(self, key: str):
        try:
            return self._shards[self._where[key]]
        except KeyError:
            raise KeyError(f"{key!r} is not in {self.path}") from None

    def __getitem__(self, key: str) -> np.ndarray:
        return self._shard(key).get(b"i:", key)

    def mask(self, key: str) -> np.ndarray | None:
        """The mask stored beside image ``key``, or None."""
        return self._shard(key).get(b"m:", key)
