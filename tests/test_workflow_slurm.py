"""The SLURM profile (workflow/profiles/slurm) on a real one-node cluster on localhost
(scripts/slurm_local.sh): the `reports` stage goes through sbatch and gives the outputs of a local
run. Skipped where SLURM is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from tests._workflow import make_workdir, snakemake
from tests.conftest import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]

SCRIPT = "scripts/slurm_local.sh"
SLURM_RULES = {"synthcxr", "data_manifest", "parse_reports_chunk", "parse_reports_gather"}
GATHERED = "results/reports/mimic_cxr"


def _controller_up() -> bool:
    return subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def cluster():
    """The local SLURM cluster, started by scripts/slurm_local.sh; stopped afterwards only when this
    fixture started it."""
    missing = [tool for tool in ("sbatch", "slurmctld") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} not found): see {SCRIPT}")
    was_up = _controller_up()
    res = subprocess.run(
        ["bash", SCRIPT, "start"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0:  # installed but not startable here (no root, no munge user, ...)
        pytest.skip(f"local SLURM cluster did not start: {(res.stdout + res.stderr)[-1500:]}")
    yield
    if not was_up:
        subprocess.run(["bash", SCRIPT, "stop"], cwd=REPO, check=True, timeout=60)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """`reports` through the SLURM profile; returns the workdir and Snakemake's log."""
    work = make_workdir(tmp_path_factory.mktemp("slurm"))
    args = ("--profile", "workflow/profiles/slurm", "--jobs", "2", "--slurm-keep-successful-logs")
    res = snakemake(work, *args, "reports")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work, res.stderr


@pytest.fixture(scope="module")
def local_run(cluster, tmp_path_factory):
    """`reports` run locally (no SLURM); needs `cluster` only to be skipped with it."""
    work = make_workdir(tmp_path_factory.mktemp("local"))
    res = snakemake(work, "reports")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work


def test_jobs_ran_as_slurm_jobs(slurm_run):
    work, log = slurm_run
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(job_ids) == 5  # synthcxr, the MIMIC manifest, 2 report chunks, gather
    for job_id in job_ids:  # slurmctld keeps finished jobs for MinJobAge (300 s)
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
        assert "JobState=COMPLETED" in info.stdout, info.stdout + info.stderr
    logs = work / ".snakemake" / "slurm_logs"
    assert {p.name for p in logs.iterdir()} == {f"rule_{rule}" for rule in SLURM_RULES}
    assert len(list(logs.rglob("*.log"))) == 5


def test_slurm_outputs_equal_local_outputs(slurm_run, local_run):
    slurm, local = slurm_run[0] / GATHERED, local_run / GATHERED
    np.testing.assert_array_equal(
        np.load(slurm / "label_matrix.npy"), np.load(local / "label_matrix.npy")
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(slurm / "triplets.parquet"), pd.read_parquet(local / "triplets.parquet")
    )
