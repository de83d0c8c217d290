"""DVC: dvc.yaml is generated (scripts/dvc_stages.py) and current, its deps follow the code's
imports; a tiny `dvc repro` → `dvc push` → delete → `dvc pull` restores every checkpoint and
table exactly; in a fresh clone, `dvc pull` then scripts/dvc_touch.py leaves Snakemake nothing
to do, and `dvc status` names the stage of a changed code file (the end-to-end part runs in a
copy of the working tree on `.test/config.yaml`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from medslip.errors import MedslipError
from medslip.tables.dvc_metrics import benchmark_figures, headline
from tests._workflow import copy_tree
from tests.conftest import REPO

DVC = (sys.executable, "-m", "dvc")
SETUP_STAMP = REPO / ".venv" / ".medslip-setup"


def _env(root: Path) -> dict[str, str]:
    """This interpreter's tools first, the medslip of ``root``, no DVC analytics, one thread."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return os.environ | {
        "PATH": path,
        "PYTHONPATH": str(root),
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
    }


def run(root: Path, *cmd: str) -> str:
    """Run ``cmd`` in ``root``; its stdout and stderr (it must succeed)."""
    res = subprocess.run(
        cmd, cwd=root, env=_env(root), capture_output=True, text=True, timeout=3600
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{out[-6000:]}"
    return out


def git_commit(root: Path, message: str) -> None:
    run(root, "git", "add", "-A")
    run(
        root, "git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", message
    )


def checksums(root: Path) -> dict[str, str]:
    """sha256 of every checkpoint (results/models/**) and table (results/tables/**) file."""
    files = [p for d in ("models", "tables") for p in (root / "results" / d).rglob("*")]
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(files)
        if p.is_file()
    }


def stage_deps(dvc_yaml: Path, stage: str) -> list[str]:
    return yaml.safe_load(dvc_yaml.read_text())["stages"][stage]["deps"]


def test_headline_keeps_values_with_intervals_and_seeds_and_leaves_out_gaps():
    table = pd.DataFrame(
        {
            "variant": ["medslip", "random_init"],
            "source": ["SynthCXR", "SynthCXR"],
            "split": ["test", "test"],
            "zeroshot_auc_nih": [0.7, np.nan],
            "zeroshot_auc_nih_lo": [0.6, np.nan],
            "zeroshot_auc_nih_hi": [0.8, np.nan],
            "zeroshot_auc_nih_n_seeds": [1, 0],
        }
    )
    assert headline(table) == {
        "medslip": {
            "SynthCXR": {
                "zeroshot_auc_nih": 0.7,
                "zeroshot_auc_nih_lo": 0.6,
                "zeroshot_auc_nih_hi": 0.8,
                "zeroshot_auc_nih_n_seeds": 1,
            }
        },
        "random_init": {"SynthCXR": {"zeroshot_auc_nih_n_seeds": 0}},
    }
    with pytest.raises(MedslipError, match="several splits"):
        headline(pd.concat([table, table.assign(split="val")]))


def test_benchmark_figures_per_rule(tmp_path):
    header = "s\th:m:s\tmax_rss\n"
    for name, row in {"a": "2.0\t0:00:02\t100.5", "b": "4.0\t0:00:04\tNA"}.items():
        (tmp_path / f"{name}.tsv").write_text(header + row + "\n")
    figures = benchmark_figures({"pretrain": [tmp_path / "a.tsv", tmp_path / "b.tsv"]})
    assert figures == {
        "pretrain": {"jobs": 2, "median_s": 3.0, "total_s": 6.0, "max_rss_mb": 100.5}
    }


def test_dvc_yaml_is_generated_and_current():
    out = run(REPO, sys.executable, "scripts/dvc_stages.py", "--check")
    assert "is current" in out


def test_an_import_added_to_a_command_changes_its_stage_deps(tmp_path):
    work = copy_tree(tmp_path)
    command = work / "medslip" / "commands" / "splits.py"
    command.write_text(
        command.read_text() + "\n\ndef _lazy() -> None:\n    import medslip.figures.style\n"
    )
    run(work, sys.executable, "scripts/dvc_stages.py")
    assert "medslip/figures/style.py" not in stage_deps(REPO / "dvc.yaml", "data")
    assert "medslip/figures/style.py" in stage_deps(work / "dvc.yaml", "data")
    assert "medslip/figures/style.py" not in stage_deps(work / "dvc.yaml", "synthcxr")


@pytest.fixture(scope="module")
def pushed(tmp_path_factory) -> dict[str, object]:
    """A copy of the working tree on `.test/config.yaml` (as config/config.yaml, dvc.yaml
    regenerated for it) in a git repository: `dvc repro`, `dvc push` to a local remote, dvc.lock
    committed; with the checksums of its checkpoints and tables."""
    if not SETUP_STAMP.is_file():
        pytest.skip("the DVC stages run scripts/run.sh, which needs .venv (scripts/setup.sh)")
    base = tmp_path_factory.mktemp("dvc")
    work = copy_tree(base / "work")
    (work / ".venv").symlink_to(REPO / ".venv")
    shutil.copy(work / ".test" / "config.yaml", work / "config" / "config.yaml")
    run(work, sys.executable, "scripts/dvc_stages.py")
    run(work, "git", "init", "-q")
    with open(work / ".git" / "info" / "exclude", "a") as fh:
        fh.write(".venv\n")  # a link, which the .gitignore pattern `.venv/` does not match
    git_commit(work, "tiny config")
    remote = base / "remote"
    run(work, *DVC, "remote", "modify", "--local", "local", "url", str(remote))
    run(work, *DVC, "repro")
    run(work, *DVC, "push")
    git_commit(work, "dvc.lock")
    return {"work": work, "remote": remote, "checksums": checksums(work)}


@pytest.mark.e2e
def test_pull_restores_every_checkpoint_and_table(pushed):
    work, before = pushed["work"], pushed["checksums"]
    assert any(name.endswith("model.safetensors") for name in before)
    assert any(name.endswith("ablation.csv") for name in before)
    for path in [*(work / "results").iterdir(), work / ".snakemake", work / ".dvc" / "cache"]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.name != "README.md":  # results/README.md is in git
            path.unlink()
    run(work, *DVC, "pull")
    assert checksums(work) == before


@pytest.mark.e2e
def test_metrics_and_plots_show(pushed):
    work = pushed["work"]
    shown = json.loads(run(work, *DVC, "metrics", "show", "--json"))
    (workspace,) = shown.values()  # one revision: the workspace (its key varies by version)
    metrics = workspace["data"]
    assert set(metrics) == {f"results/metrics/{n}.json" for n in ("headline", "data", "benchmarks")}
    headline = metrics["results/metrics/headline.json"]["data"]
    assert 0 <= headline["medslip"]["SynthCXR"]["zeroshot_auc_nih_cxr14"] <= 1
    data = metrics["results/metrics/data.json"]["data"]
    assert data["nih_cxr14"]["images"] > 0 and "quarantined" in data["nih_cxr14"]
    assert metrics["results/metrics/benchmarks.json"]["data"]["pretrain"]["jobs"] == 7
    run(work, *DVC, "plots", "show")
    html = (work / "dvc_plots" / "index.html").read_text()
    for name in ("roc_nih_cxr14.csv", "pretraining_train_loss", "pretraining_val_loss"):
        assert name in html, name


@pytest.fixture(scope="module")
def clone(pushed, tmp_path_factory) -> Path:
    """A fresh clone of the pushed repository after `dvc pull` and scripts/dvc_touch.py."""
    clone = tmp_path_factory.mktemp("clone") / "repo"
    run(REPO, "git", "clone", "-q", str(pushed["work"]), str(clone))
    (clone / ".venv").symlink_to(REPO / ".venv")
    run(clone, *DVC, "remote", "modify", "--local", "local", "url", str(pushed["remote"]))
    run(clone, *DVC, "pull")
    run(clone, sys.executable, "scripts/dvc_touch.py")
    return clone


@pytest.mark.e2e
def test_after_pull_and_touch_snakemake_has_nothing_to_do(clone):
    out = run(clone, sys.executable, "-m", "snakemake", "--cores", "1", "-n", "all")
    assert "Nothing to be done" in out, out[-4000:]
    assert json.loads(run(clone, *DVC, "status", "--json")) == {}


@pytest.mark.e2e
def test_status_names_the_stage_of_a_changed_code_file(clone):
    tables = clone / "medslip" / "results" / "tables.py"
    text = tables.read_text()
    tables.write_text(text + "# changed\n")
    try:
        status = json.loads(run(clone, *DVC, "status", "--json"))
    finally:
        tables.write_text(text)
    assert set(status) == {"results"}, status
    assert "medslip/tables/paper.py" in json.dumps(status["results"])
