"""One tiny end-to-end run of the whole DAG (`all` on `.test/config.yaml`) through Snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    return subprocess.run(
        [*cmd, "--configfile", ".test/config.yaml"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    for name in ("workflow", "config", ".test"):
        (work / name).symlink_to(REPO / name)
    res = _snakemake(work, "all")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work


def test_all_builds_synthcxr_and_contact_sheet(run):
    for name in ("mimic_cxr_jpg", "nih_cxr14", "rsna_pneumonia", "siim_acr"):
        assert any((run / "results" / "synthcxr" / name).iterdir())
        assert (run / "results" / "synthcxr" / "ground_truth" / name / "images.parquet").is_file()
        assert (run / "results" / "benchmarks" / "synthcxr" / f"{name}.tsv").is_file()
    sheet = Image.open(run / "results" / "figures" / "synthcxr_examples.png")
    assert sheet.size[0] > 800 and sheet.size[1] > 300


def test_second_run_has_nothing_to_do(run):
    res = _snakemake(run, "-n", "all")
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


def test_snakemake_report_builds(run):
    res = _snakemake(run, "--report", "results/report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (run / "results" / "report.html").read_text(errors="replace")
    assert "synthcxr_examples.png" in html
