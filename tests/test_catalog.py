"""What the Snakemake workflow catalog and a fork's CI expect: a LICENSE, `.test/` runnable on its
own with `snakemake --directory .test` (its config at `.test/config/config.yaml`, where the
Snakefile's `configfile:` looks relative to the working directory), the catalog's usage file,
a GitHub Actions workflow that runs `.ci/run`, and a snakedeploy deployment of a local clone
(scripts/deploy.sh) that plans the whole DAG with no environment variable."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests._workflow import copy_tree, make_workdir, snakemake
from tests.conftest import REPO
from tests.test_workflow_targets import _jobs


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


def test_a_snakedeploy_deployment_plans_the_whole_dag(tmp_path):
    if importlib.util.find_spec("snakedeploy") is None:
        pytest.skip("snakedeploy is not installed (the dev extra has it)")
    clone = copy_tree(tmp_path / "clone")  # the working tree's own files, as a fresh clone has
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDSLIP_SRC")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    deployed = tmp_path / "study"
    subprocess.run(["bash", clone / "scripts" / "deploy.sh", deployed], env=env, check=True)
    snakefile = (deployed / "workflow" / "Snakefile").read_text()
    assert f'"{clone}/workflow/Snakefile"' in snakefile and "use rule * from medslip" in snakefile
    plans = []
    for root in (deployed, clone):
        res = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "all"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        plans.append(_jobs(res.stdout))
    assert plans[0] == plans[1] and plans[0]["pretrain"] > 0 and plans[0]["all"] == 1, plans


MODULE = """\
configfile: "medslip.yaml"


module medslip:
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from medslip as medslip_*
"""


def test_a_module_with_a_prefix_plans_the_whole_dag(tmp_path):
    """medslip's rules as a module of another workflow, renamed: the same jobs as on its own."""
    (tmp_path / "Snakefile").write_text(MODULE.format(snakefile=REPO / "workflow" / "Snakefile"))
    shutil.copy(REPO / ".test" / "config.yaml", tmp_path / "medslip.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDSLIP_SRC")}
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "medslip_all"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    (tmp_path / "own").mkdir()
    own = snakemake(make_workdir(tmp_path / "own"), "-n", "all")  # on .test/config.yaml too
    assert own.returncode == 0, own.stderr[-3000:]
    renamed = {rule.removeprefix("medslip_"): n for rule, n in _jobs(res.stdout).items()}
    assert renamed == _jobs(own.stdout), (renamed, _jobs(own.stdout))
