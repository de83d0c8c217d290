"""DVC: dvc.yaml is generated (scripts/dvc_stages.py) and current, its deps follow the code's
imports; the headline metrics are one file per task with one value per variant, so that
`dvc metrics show` and `dvc metrics diff` stay narrow; `dvc plots show` uses a page that loads
nothing from the network; no remote is configured inside the clone. The lab round trip (one
end-to-end test on `.test/config.yaml`, in a copy of the working tree): `dvc repro` and
`dvc push` to a remote outside the clone, then in a fresh `git clone`, `dvc pull` alone leaves
Snakemake nothing to do while a changed input still reruns what reads it."""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from medslip.errors import MedslipError
from medslip.tables.dvc_metrics import benchmark_figures, headline, write_headline
from tests._workflow import copy_tree
from tests.conftest import REPO
from tests.test_workflow_targets import _jobs

DVC = (sys.executable, "-m", "dvc")
SETUP_STAMP = REPO / ".venv" / ".medslip-setup"
PAGE = REPO / ".dvc" / "plots" / "page.html"
NPM = REPO / "scripts" / "vega"


def _env(root: Path) -> dict[str, str]:
    """This interpreter's tools first, the medslip of ``root``, no DVC analytics, one thread."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return os.environ | {
        "PATH": path,
        "PYTHONPATH": str(root),
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "1",
    }


def run(root: Path, *cmd: str | Path) -> str:
    """Run ``cmd`` in ``root``; its stdout and stderr (it must succeed)."""
    res = subprocess.run(
        cmd, cwd=root, env=_env(root), capture_output=True, text=True, timeout=3600
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{out[-6000:]}"
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


def _ablation(value: float) -> pd.DataFrame:
    """A two-variant ablation table (one source) with an n/a cell."""
    return pd.DataFrame(
        {
            "variant": ["medslip", "random_init"],
            "source": ["SynthCXR", "SynthCXR"],
            "split": ["test", "test"],
            "zeroshot_auc_nih_cxr14": [value, np.nan],
            "zeroshot_auc_nih_cxr14_lo": [value - 0.1, np.nan],
            "zeroshot_auc_nih_cxr14_hi": [value + 0.1, np.nan],
            "zeroshot_auc_nih_cxr14_n_seeds": [1, 0],
            "finetune_auc_rsna_pneumonia_1pct": [0.6, 0.55],
            "finetune_auc_rsna_pneumonia_1pct_lo": [0.5, 0.45],
            "finetune_auc_rsna_pneumonia_1pct_hi": [0.7, 0.65],
            "finetune_auc_rsna_pneumonia_1pct_n_seeds": [1, 1],
        }
    )


def test_headline_is_one_value_per_source_task_and_variant(tmp_path):
    value = headline(_ablation(0.7))
    assert value == {
        "SynthCXR": {
            "zeroshot_auc_nih_cxr14": {"medslip": 0.7},
            "finetune_auc_rsna_pneumonia_1pct": {"medslip": 0.6, "random_init": 0.55},
        }
    }
    assert write_headline(value, tmp_path / "headline") == 2
    written = tmp_path / "headline" / "SynthCXR" / "finetune_auc_rsna_pneumonia_1pct.json"
    assert json.loads(written.read_text()) == {"medslip": 0.6, "random_init": 0.55}
    with pytest.raises(MedslipError, match="several splits"):
        headline(pd.concat([_ablation(0.7), _ablation(0.7).assign(split="val")]))


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


def test_no_remote_in_the_clone_and_plots_use_the_offline_page():
    config = configparser.ConfigParser()
    config.read(REPO / ".dvc" / "config")
    assert not [s for s in config.sections() if s.startswith("'remote")], config.sections()
    assert "remote" not in config["core"]  # the lab adds its own: dvc remote add -d lab PATH
    assert (REPO / ".dvc" / config["plots"]["html_template"]).resolve() == PAGE


def test_the_plots_page_loads_nothing_from_the_network():
    text = PAGE.read_text()
    assert "{plot_divs}" in text and "{scripts}" not in text  # DVC's CDN tags are left out
    tags = re.sub(r"<script>.*?</script>", "", text, flags=re.S)  # the page less the libraries
    assert not re.search(r"""\b(?:src|href)\s*=""", tags)
    assert len(re.findall(r"<script>", text)) == 3
    locked = json.loads((NPM / "package-lock.json").read_text())["packages"]
    inlined = dict(re.findall(r"([\w-]+)@(\d[\w.-]*)", text.split("-->")[0].split("inlined:")[1]))
    assert inlined == {n: locked[f"node_modules/{n}"]["version"] for n in inlined}
    assert set(inlined) == {"vega", "vega-lite", "vega-embed"}
    if (NPM / "node_modules").is_dir():  # after `npm ci --prefix scripts/vega`
        assert "is current" in run(REPO, sys.executable, "scripts/dvc_plots_page.py", "--check")


def test_metrics_diff_between_two_commits_is_one_row_per_task_and_variant(tmp_path):
    run(tmp_path, "git", "init", "-q")
    run(tmp_path, *DVC, "init", "-q")
    (tmp_path / "dvc.yaml").write_text("metrics:\n- headline\n")
    for value in (0.7, 0.75):
        shutil.rmtree(tmp_path / "headline", ignore_errors=True)
        write_headline(headline(_ablation(value)), tmp_path / "headline")
        git_commit(tmp_path, f"auc {value}")
    shown = run(tmp_path, *DVC, "metrics", "show").splitlines()
    assert len(shown) == 3 and shown[0].split() == ["Path", "medslip", "random_init"], shown
    diff = run(tmp_path, *DVC, "metrics", "diff", "HEAD~1", "HEAD").splitlines()
    assert diff[0].split() == ["Path", "Metric", "HEAD~1", "HEAD", "Change"], diff
    (row,) = diff[1:]
    assert row.split() == [
        "headline/SynthCXR/zeroshot_auc_nih_cxr14.json",
        "medslip",
        "0.7",
        "0.75",
        "0.05",
    ]


@pytest.mark.e2e
def test_lab_round_trip(tmp_path):
    """One clone runs `dvc repro` and `dvc push` to the lab's remote; a fresh `git clone` runs
    `dvc pull` and nothing else: its results equal the first clone's, `snakemake -n all` and
    `dvc repro --dry` have nothing to do, a changed table reruns exactly what reads it (and the
    benchmark figures, which read those jobs' timings), and a changed code file marks its stage
    only."""
    if not SETUP_STAMP.is_file():
        pytest.skip("the DVC stages run scripts/run.sh, which needs .venv (scripts/setup.sh)")
    work = copy_tree(tmp_path / "work")
    (work / ".venv").symlink_to(REPO / ".venv")
    shutil.copy(work / ".test" / "config.yaml", work / "config" / "config.yaml")
    run(work, sys.executable, "scripts/dvc_stages.py")
    run(work, "git", "init", "-q")
    remote = tmp_path / "lab-remote"  # shared storage, outside every clone
    run(work, *DVC, "remote", "add", "-d", "lab", remote)
    git_commit(work, "tiny config, the lab's remote")
    run(work, *DVC, "repro")
    start = time.monotonic()
    run(work, *DVC, "push")
    print(f"dvc push: {time.monotonic() - start:.1f} s")
    git_commit(work, "dvc.lock")
    before = checksums(work)
    assert any(name.endswith("model.safetensors") for name in before)
    assert any(name.endswith("ablation.csv") for name in before)

    shown = run(work, *DVC, "metrics", "show").splitlines()
    # 7 variants and the grounding controls
    assert shown[0].split()[0] == "Path" and len(shown[0].split()) == 8 + 3, shown[0]
    rows = [line.split()[0] for line in shown[1:]]  # one per task, no Snakemake marker file
    assert all(r.startswith("results/metrics/headline/SynthCXR/") for r in rows), rows
    assert "results/metrics/headline/SynthCXR/zeroshot_auc_nih_cxr14.json" in rows, rows
    run(work, *DVC, "plots", "show")
    html = (work / "dvc_plots" / "index.html").read_text()
    assert html.count("<script>") == 3  # the page's inlined libraries
    assert not re.search(
        r"""\b(?:src|href)\s*=""", re.sub(r"<script>.*?</script>", "", html, flags=re.S)
    )
    for name in ("roc_nih_cxr14.csv", "pretraining_train_loss", "pretraining_val_loss"):
        assert name in html, name

    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", work, clone)
    (clone / ".venv").symlink_to(REPO / ".venv")
    start = time.monotonic()
    run(clone, *DVC, "pull")
    print(f"dvc pull: {time.monotonic() - start:.1f} s")
    assert checksums(clone) == before
    out = run(clone, sys.executable, "-m", "snakemake", "--cores", "1", "-n", "all")
    assert "Nothing to be done" in out, out[-4000:]
    assert "stamped in DAG order" in out
    assert json.loads(run(clone, *DVC, "status", "--json")) == {}
    assert "Data and pipelines are up to date" in run(clone, *DVC, "repro", "--dry")

    table = clone / "results" / "tables" / "ablation.csv"
    table.write_text(table.read_text().replace("medslip", "medslip ", 1))
    jobs = _jobs(run(clone, sys.executable, "-m", "snakemake", "--cores", "1", "-n", "all"))
    readers = {"dvc_metrics_headline": 1, "figure_ablation": 1}
    assert jobs == readers | {"dvc_metrics_benchmarks": 1, "all": 1}, jobs  # + their timings

    paper = clone / "medslip" / "tables" / "paper.py"
    paper.write_text(paper.read_text() + "# changed\n")
    status = json.loads(run(clone, *DVC, "status", "--json"))
    assert set(status) == {"results"}, status
    assert "medslip/tables/paper.py" in json.dumps(status["results"])


def _dry_run_jobs(text: str) -> list[dict[str, str]]:
    """The jobs a dry run (``-n -p``) prints: {"rule", "input", "output", "benchmark", "shell"}."""
    jobs: list[dict[str, str]] = []
    for line in text.splitlines():
        if found := re.fullmatch(r"(?:local)?rule (\w+):", line):
            jobs.append({"rule": found[1]})
        elif jobs and (found := re.fullmatch(r"    (input|output|benchmark): (.*)", line)):
            jobs[-1][found[1]] = found[2]
        elif jobs and line.startswith("Shell command: "):
            jobs[-1]["shell"] = line.removeprefix("Shell command: ")
    return jobs


def test_benchmark_metrics_read_the_benchmark_of_every_job_of_all(tmp_path):
    """The DVC benchmark metrics read one benchmark file per job that writes a final output of
    `all`, named by its rule, and no other (the rule files record them with final_benchmark):
    checked against the jobs a dry run of `all` prints."""
    from tests._workflow import make_workdir, snakemake

    res = snakemake(make_workdir(tmp_path), "-n", "-p", "-F", "all")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = _dry_run_jobs(res.stdout)
    (final,) = [set(j["input"].split(", ")) for j in jobs if j["rule"] == "all"]
    expected = {
        f"{j['rule']}={j['benchmark']}"
        for j in jobs
        if "benchmark" in j and final & set(j["output"].split(", "))
    }
    (command,) = [j["shell"] for j in jobs if j["rule"] == "dvc_metrics_benchmarks"]
    read = set(re.findall(r"\S+=results/benchmarks/\S+\.tsv", command))
    assert read == expected
    assert {"pretrain", "evaluate_zeroshot", "finetune_seg", "table_ablation", "synth"} <= {
        pair.split("=")[0] for pair in read
    }
