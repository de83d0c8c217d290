"""Shared fixtures: the real public data in ../shared/data/real (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = Path(os.environ.get("MEDSLIP_REAL_DATA", REPO.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Root of ../shared/data/real; tests using it are skipped when it is not there."""
    if not REAL_DATA.is_dir():
        pytest.skip(f"real data not found at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def e2e_workdir(tmp_path_factory) -> Path:
    """One run of `all` on `.test/config.yaml` (plus the real COVID-19 collection as a data source
    when present), shared by the end-to-end and pretraining tests."""
    from tests._workflow import make_workdir, snakemake

    work = make_workdir(tmp_path_factory.mktemp("e2e"))
    covid = REAL_DATA / "covid_chestxray"
    if covid.is_dir():
        (work / "covid.yaml").write_text(f"datasets:\n  covid_chestxray: {covid}\n")
    res = snakemake(work, "all")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work
