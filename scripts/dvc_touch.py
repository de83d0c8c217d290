"""Make Snakemake agree with DVC after DVC wrote results/ (``dvc pull``, ``dvc checkout``, a
run-cache restore): run ``python scripts/dvc_touch.py``, then ``snakemake -n all`` has nothing
to do.

DVC restores files with fresh modification times in no particular order, and Snakemake reruns
a job whose inputs look newer than its outputs. This gives every file and folder under each
stage's outs in dvc.yaml one time, one second later per stage in DVC's stage order (so no
input of a job is newer than its outputs: within a stage the times are equal, Snakemake reruns
only on a strictly newer input), and drops Snakemake's records of earlier runs
(``.snakemake/metadata``, ``.snakemake/incomplete``), which described the files DVC replaced.
Nothing is run and no file content changes (``dvc status`` stays as it was).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _path(entry: str | dict[str, Any]) -> str:
    """The path of a dvc.yaml ``deps``/``outs`` entry (a string or ``{path: options}``)."""
    return entry if isinstance(entry, str) else next(iter(entry))


def stage_outs(dvc_yaml: Path) -> list[list[str]]:
    """The outs of each stage of ``dvc_yaml``, stages in DAG order (a stage after every stage
    whose outs it depends on)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    outs = {name: [_path(o) for o in s.get("outs", [])] for name, s in stages.items()}
    owner = {out: name for name, paths in outs.items() for out in paths}

    def needs(name: str) -> set[str]:
        deps = [_path(d) for d in stages[name].get("deps", [])]
        return {owner[d] for d in deps if d in owner} - {name}

    order: list[str] = []
    while len(order) < len(stages):
        ready = [n for n in stages if n not in order and needs(n) <= set(order)]
        if not ready:
            sys.exit(f"{dvc_yaml}: the stages' deps form a cycle")
        order += ready
    return [outs[name] for name in order]


def stamp(path: Path, when: float) -> int:
    """Set the access and modification time of ``path`` and everything below it to ``when``;
    the number of entries set."""
    if not path.exists():
        return 0
    entries = [path]
    if path.is_dir() and not path.is_symlink():
        for folder, dirs, files in os.walk(path):
            entries += [Path(folder, name) for name in dirs + files]
    for entry in entries:
        os.utime(entry, (when, when), follow_symlinks=False)
        if entry.is_symlink():  # a DVC cache link: Snakemake reads the target's time too
            os.utime(entry, (when, when))
    return len(entries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository (default: this one)")
    args = parser.parse_args(argv)
    stages = stage_outs(args.root / "dvc.yaml")
    start = int(time.time()) - len(stages)
    count = sum(stamp(args.root / out, start + i) for i, outs in enumerate(stages) for out in outs)
    for record in ("metadata", "incomplete"):
        shutil.rmtree(args.root / ".snakemake" / record, ignore_errors=True)
    print(f"dvc_touch: {count} files and folders of {len(stages)} stages stamped in DAG order")
    return 0


if __name__ == "__main__":
    sys.exit(main())
