"""What the Snakemake workflow catalog and a fork's CI expect: a LICENSE, `.test/` runnable on its
own with `snakemake --directory .test` (its config at `.test/config/config.yaml`, where the
Snakefile's `configfile:` looks relative to the working directory), the catalog's usage file,
and a GitHub Actions workflow that runs `.ci/run`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests._workflow import copy_tree
from tests.conftest import REPO


def test_license_is_the_mit_license_pyproject_names():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert re.search(r"Copyright \(c\) 20\d\d medslip developers", text)
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "MIT"


def test_test_config_is_where_the_snakefile_looks_from_the_test_dir():
    snakefile = (REPO / "workflow" / "Snakefile").read_text()
    (configfile,) = re.findall(r'^configfile: "([^"]+)"', snakefile, flags=re.M)
    found = REPO / ".test" / configfile
    assert found.resolve() == (REPO / ".test" / "config.yaml").resolve()


def test_catalog_usage_file():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert usage["software-stack-deployment"]["conda"] is True
    assert usage["report"] is True


def test_ci_workflow_runs_ci_run_on_python_311():
    ci = yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = ci["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    steps = job["steps"]
    python = [s for s in steps if s.get("uses", "").startswith("actions/setup-python")]
    assert python and str(python[0]["with"]["python-version"]) == "3.11"
    assert any("bash .ci/run" in s.get("run", "") for s in steps)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A checkout with workflow/ (linked) and a copy of .test/'s own files only (not the results
    of an earlier `snakemake --directory .test` run): no config/, so the run can only use what
    .test/ holds; outputs stay out of the repository."""
    root = tmp_path_factory.mktemp("catalog")
    (root / "workflow").symlink_to(REPO / "workflow")
    return copy_tree(root, ".test")


def _snakemake(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--directory", ".test", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.e2e
def test_dry_run_in_the_test_dir(checkout):
    res = _snakemake(checkout, "--cores", "2", "-n", "all")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    n_chunks = yaml.safe_load((REPO / ".test" / "config.yaml").read_text())["reports"]["n_chunks"]
    assert re.search(rf"^parse_reports_chunk\s+{n_chunks}$", out, flags=re.M), out[-4000:]
    assert not (checkout / ".test" / "results").exists()


@pytest.mark.e2e
def test_lint_in_the_test_dir(checkout):
    res = _snakemake(checkout, "--lint")
    assert "Congratulations, your workflow is in a good condition" in res.stdout + res.stderr
