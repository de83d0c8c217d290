"""medslip.dvc_sync: after DVC wrote the outs of a toy dvc.yaml in random order, they are stamped
in DAG order (persist outs with the last stage) when DVC vouches for them, once per dvc.lock; left
alone when their content differs from dvc.lock or they are already in order."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medslip import dvc_sync

DVC_YAML = """\
stages:
  b:
    cmd: make b
    deps: [results/a]
    outs: [results/b, {results/bench: {persist: true}}]
  a:
    cmd: make a
    outs: [results/a]
  c:
    cmd: make c
    deps: [results/b]
    outs: [results/c]
"""


def _times(root: Path, out: str) -> set[float]:
    """The modification times of ``out`` and everything below it."""
    paths = [root / out, *(root / out).rglob("*")]
    return {p.stat().st_mtime for p in paths}


@pytest.fixture
def repo(tmp_path) -> Path:
    """dvc.yaml, then dvc.lock, then outs written newest-first against the DAG (as a pull may)."""
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    lock_time = (tmp_path / "dvc.lock").stat().st_mtime
    for i, out in enumerate(["results/c", "results/bench", "results/b", "results/a"]):
        (tmp_path / out / "sub").mkdir(parents=True)
        (tmp_path / out / "sub" / "file.txt").write_text(out)
        when = lock_time + 100 - i
        for p in [tmp_path / out, *(tmp_path / out).rglob("*")]:
            os.utime(p, (when, when))
    (tmp_path / ".snakemake" / "metadata").mkdir(parents=True)
    return tmp_path


def test_stages_in_dag_order_with_their_persist_outs(repo):
    stages = dvc_sync.stages(repo / "dvc.yaml")
    assert [s.name for s in stages] == ["a", "b", "c"]
    assert stages[1].outs == ("results/b",) and stages[1].persist == ("results/bench",)


def test_restored_outs_are_stamped_in_dag_order_once(repo, monkeypatch):
    monkeypatch.setattr(dvc_sync, "_dvc_outs_match", lambda root: (True, ""))
    message = dvc_sync.sync(repo, environ={})
    assert "stamped in DAG order" in message and "restored by DVC" in message
    a, b, c = (_times(repo, f"results/{n}") for n in "abc")
    assert len(a) == len(b) == len(c) == 1 and max(a) < min(b) < min(c)
    assert _times(repo, "results/bench") == c  # persist: the last stage's time
    assert not (repo / ".snakemake" / "metadata").exists()
    assert dvc_sync.sync(repo, environ={}) is None  # dvc.lock unchanged since


def test_outs_that_differ_from_the_lock_are_left_alone(repo, monkeypatch):
    monkeypatch.setattr(dvc_sync, "_dvc_outs_match", lambda root: (False, "outs of ['b']"))
    before = {out: _times(repo, out) for out in ("results/a", "results/b", "results/c")}
    assert "left as they are" in dvc_sync.sync(repo, environ={})
    assert before == {out: _times(repo, out) for out in before}
    assert not (repo / dvc_sync.MARKER).exists()  # asked again next time


def test_inside_a_dvc_stage_the_stages_above_it_are_stamped(repo):
    c_before = _times(repo, "results/c")
    environ = {"DVC_ROOT": str(repo), "DVC_STAGE": "c"}
    assert "stamped in DAG order" in dvc_sync.sync(repo, environ=environ)
    a, b = _times(repo, "results/a"), _times(repo, "results/b")
    assert len(a) == len(b) == 1 and max(a) < min(b) and _times(repo, "results/bench") == b
    assert _times(repo, "results/c") == c_before
    assert not (repo / dvc_sync.MARKER).exists()  # dvc repro rewrites dvc.lock


def test_outs_in_order_and_older_than_the_lock_keep_their_times(repo, monkeypatch):
    monkeypatch.setattr(dvc_sync, "_dvc_outs_match", lambda root: (True, ""))
    for i, out in enumerate(["results/a", "results/b", "results/bench", "results/c"]):
        for p in [repo / out, *(repo / out).rglob("*")]:
            os.utime(p, (1000 + i, 1000 + i))
    assert dvc_sync.sync(repo, environ={}) is None
    assert _times(repo, "results/a") == {1000} and (repo / ".snakemake" / "metadata").is_dir()
    assert (repo / dvc_sync.MARKER).read_text()


def test_nothing_without_a_lock(tmp_path):
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    assert dvc_sync.sync(tmp_path, environ={}) is None
    assert not (tmp_path / ".snakemake").exists()
