"""Make Snakemake agree with DVC after DVC wrote ``results/`` (``dvc pull``, ``dvc checkout``, a
run-cache restore), with no command to remember: the Snakefile calls :func:`sync` first.

DVC writes files with fresh modification times in no particular order, and Snakemake reruns a job
whose inputs look newer than its outputs (Snakemake 9 always compares times; ``--rerun-triggers``
cannot turn that off). When DVC vouches for the files, :func:`stamp` gives every file and folder
under a stage's outs in dvc.yaml one time, one second later per stage in DAG order (Snakemake
reruns only on a strictly newer input), and the ``persist`` outs (benchmark files, written by the
jobs of every stage) the time of the last stage. Nothing is run and no content changes.

When DVC vouches: outside a DVC stage, when ``dvc status`` finds every stage's outs as dvc.lock
records them (code or config changes are left to Snakemake and DVC to see); inside the command
of a DVC stage (``dvc repro``, environment variable ``DVC_STAGE``), for the outs of the stages
above it, which ``dvc repro`` has just checked or rebuilt. Work is done only when dvc.lock changed
since the last sync (``.snakemake/medslip-dvc-sync`` holds its hash), and stamping only when the
files need it: some were written after dvc.lock (DVC restored them) or a stage's files are older
than those of a stage above it. After a restore, Snakemake's records of earlier runs
(``.snakemake/metadata``, ``.snakemake/incomplete``) described the replaced files and are dropped.

Standard library and PyYAML only; DVC is imported when present (without it nothing happens).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

LOCK = "dvc.lock"
MARKER = ".snakemake/medslip-dvc-sync"
"""sha256 of dvc.lock at the last sync."""
RECORDS = (".snakemake/metadata", ".snakemake/incomplete")
"""Snakemake's records of earlier runs, dropped after DVC replaced the files."""


@dataclass(frozen=True)
class Stage:
    """A DVC stage: its name, outs and the outs DVC keeps when it reruns it (``persist``)."""

    name: str
    outs: tuple[str, ...]
    persist: tuple[str, ...]


def _path(entry: str | dict[str, Any]) -> str:
    """The path of a dvc.yaml ``deps``/``outs`` entry (a string or ``{path: options}``)."""
    return entry if isinstance(entry, str) else next(iter(entry))


def stages(dvc_yaml: Path) -> list[Stage]:
    """The stages of ``dvc_yaml`` in DAG order (each after every stage whose outs it uses)."""
    spec = yaml.safe_load(dvc_yaml.read_text())["stages"]
    outs = {name: [_path(o) for o in s.get("outs", [])] for name, s in spec.items()}
    owner = {out: name for name, paths in outs.items() for out in paths}

    def needs(name: str) -> set[str]:
        deps = [_path(d) for d in spec[name].get("deps", [])]
        return {owner[d] for d in deps if d in owner} - {name}

    order: list[str] = []
    while len(order) < len(spec):
        ready = [n for n in spec if n not in order and needs(n) <= set(order)]
        if not ready:
            raise ValueError(f"{dvc_yaml}: the stages' deps form a cycle")
        order += ready
    persist = {
        name: [
            _path(o)
            for o in s.get("outs", [])
            if isinstance(o, dict) and o[_path(o)].get("persist")
        ]
        for name, s in spec.items()
    }
    return [
        Stage(n, tuple(o for o in outs[n] if o not in persist[n]), tuple(persist[n])) for n in order
    ]


def _entries(path: Path) -> list[Path]:
    """``path`` and everything below it (nothing when it does not exist)."""
    if not path.exists() and not path.is_symlink():
        return []
    found = [path]
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            found += [Path(folder, name) for name in dirs + files]
    return found


def _mtime(path: Path) -> float:
    return path.lstat().st_mtime


def needs_stamp(root: Path, chosen: list[Stage], lock_time: float) -> tuple[bool, bool]:
    """(stamp needed, files restored): restored when a file under the outs of ``chosen`` is
    newer than dvc.lock; stamping is needed then, or when a stage's files are older than those
    of a stage above it."""
    restored, newest_above = False, float("-inf")
    out_of_order = False
    for stage in chosen:
        times = [_mtime(p) for out in stage.outs for p in _entries(root / out)]
        persist = [_mtime(p) for out in stage.persist for p in _entries(root / out)]
        restored |= any(t > lock_time for t in times + persist)
        if times:
            out_of_order |= min(times) < newest_above
            newest_above = max(newest_above, max(times))
    return restored or out_of_order, restored


def stamp(root: Path, chosen: list[Stage], persist: list[str], start: float) -> int:
    """Set the time of everything under the outs of ``chosen`` (stage ``i`` at ``start + i``)
    and under ``persist`` (at the last of those times); the number of entries set."""
    count = 0
    jobs = [(out, start + i) for i, stage in enumerate(chosen) for out in stage.outs]
    jobs += [(out, start + max(len(chosen) - 1, 0)) for out in persist]
    for out, when in jobs:
        for entry in _entries(root / out):
            os.utime(entry, (when, when), follow_symlinks=False)
            if entry.is_symlink():  # a DVC cache link: Snakemake reads the target's time too
                os.utime(entry, (when, when))
            count += 1
    return count


def _dvc_outs_match(root: Path) -> tuple[bool, str]:
    """Whether ``dvc status`` finds every stage's outs as dvc.lock records them, and why not."""
    try:
        from dvc.repo import Repo
    except ImportError:
        return False, "DVC is not installed here"
    try:
        with Repo(str(root)) as repo:
            status = repo.status()
    except Exception as exc:  # a lock held by another DVC process, a damaged cache, ...
        return False, f"dvc status failed ({exc})"
    changed = sorted(
        name
        for name, entries in status.items()
        if any(isinstance(e, dict) and "changed outs" in e for e in entries)
    )
    return not changed, f"the outs of {changed} differ from dvc.lock"


def sync(root: Path, environ: Mapping[str, str] = os.environ) -> str | None:
    """Stamp the DVC outs under ``root`` in DAG order when DVC vouches for them and they need it
    (see the module text; a DVC stage of this repository runs when ``environ`` names it); a line
    saying what was done, or None when nothing was to do."""
    lock = root / LOCK
    if not (lock.is_file() and (root / "dvc.yaml").is_file()):
        return None
    dvc_root = environ.get("DVC_ROOT")
    in_repo = bool(dvc_root) and Path(dvc_root).resolve() == root.resolve()
    in_stage = environ.get("DVC_STAGE") if in_repo else None
    key = hashlib.sha256(lock.read_bytes()).hexdigest()
    marker = root / MARKER
    if marker.is_file() and marker.read_text() == key:
        return None
    order = stages(root / "dvc.yaml")
    if in_stage is None:
        ok, why = _dvc_outs_match(root)
        if not ok:
            return f"DVC outputs left as they are: {why}"
        chosen = order
    else:
        names = [s.name for s in order]
        chosen = order[: names.index(in_stage)] if in_stage in names else []
    persist = [out for stage in order for out in stage.persist]
    needed, restored = needs_stamp(root, chosen, lock.stat().st_mtime)
    message = None
    if needed:
        count = stamp(root, chosen, persist, int(time.time()) - len(order))
        message = f"{count} files and folders of DVC stages {[s.name for s in chosen]} stamped"
        message += " in DAG order, so that Snakemake sees them up to date"
        if restored:
            for record in RECORDS:
                shutil.rmtree(root / record, ignore_errors=True)
            message += " (restored by DVC: Snakemake's records of the replaced files dropped)"
    if in_stage is None:
        marker.parent.mkdir(exist_ok=True)
        marker.write_text(key)
    return message
