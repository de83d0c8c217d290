"""Running the workflow on `.test/config.yaml` through Snakemake in a temporary workdir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def copy_tree(dest: Path, *paths: str) -> Path:
    """The working tree's files under ``paths`` (all when none given; tracked, and untracked but
    not ignored) copied to ``dest``: never the outputs of an earlier run, which git ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "-co", "--exclude-standard", "--", *paths],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def make_workdir(work: Path) -> Path:
    """Link the repo's workflow/, config/ and .test/ into `work` (results land in `work`)."""
    for name in ("workflow", "config", ".test"):
        (work / name).symlink_to(REPO / name)
    return work


def snakemake(
    workdir: Path,
    *args: str,
    configs: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Snakemake with `args` in `workdir` on `.test/config.yaml` (plus `covid.yaml` when there,
    then `configs`), in ``env`` (default: this environment, this interpreter's folder first on
    PATH)."""
    if env is None:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
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
