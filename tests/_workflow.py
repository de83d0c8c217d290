"""Running the workflow on `.test/config.yaml` through Snakemake in a temporary workdir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def make_workdir(work: Path) -> Path:
    """Link the repo's workflow/, config/ and .test/ into `work` (results land in `work`)."""
    for name in ("workflow", "config", ".test"):
        (work / name).symlink_to(REPO / name)
    return work


def snakemake(
    workdir: Path, *args: str, configs: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Snakemake with `args` in `workdir` on `.test/config.yaml` (plus `covid.yaml` when there,
    then `configs`)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    covid = ["covid.yaml"] if (workdir / "covid.yaml").exists() else []
    configs = [".test/config.yaml", *covid, *configs]
    return subprocess.run(
        [*cmd, "--configfile", *configs],  # --configfile takes every word after it: keep it last
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
