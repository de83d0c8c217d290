"""One tiny end-to-end run of the whole DAG (`all` on `.test/config.yaml`) through Snakemake; with
the real COVID-19 image collection of ../shared/data/real added as a data source when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from medslip.data import ShardReader
from tests._workflow import make_workdir, snakemake
from tests.conftest import REAL_DATA, REPO

pytestmark = pytest.mark.e2e
SIZE = yaml.safe_load((REPO / ".test/config.yaml").read_text())["data"]["image_size"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = make_workdir(tmp_path_factory.mktemp("e2e"))
    covid = REAL_DATA / "covid_chestxray"
    if covid.is_dir():
        (work / "covid.yaml").write_text(f"data:\n  covid_chestxray: {covid}\n")
    res = snakemake(work, "all")
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
    res = snakemake(run, "-n", "all")
    assert res.returncode == 0
    assert "Nothing to be done" in res.stdout + res.stderr


def test_snakemake_report_builds(run):
    res = snakemake(run, "--report", "results/report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (run / "results" / "report.html").read_text(errors="replace")
    assert "synthcxr_examples.png" in html


def test_reports_become_label_matrices(run):
    out = run / "results" / "reports" / "mimic_cxr"
    reports = list((run / "results" / "synthcxr" / "mimic_cxr_jpg" / "files").rglob("s*.txt"))
    ids = (out / "report_ids.txt").read_text().split()
    matrix = np.load(out / "label_matrix.npy")
    assert matrix.shape == (len(reports), 51, 75) == (len(ids), 51, 75)
    assert matrix.dtype == np.int8 and set(np.unique(matrix)) <= {-1, 0, 1}
    assert (matrix == 1).any() and (matrix == 0).any()
    triplets = pd.read_parquet(out / "triplets.parquet")
    assert set(triplets["report_id"]) <= set(ids)


def _check_dataset(results: Path, source: str) -> None:
    """Splits partition the manifest and the shards hold every image that was not quarantined."""
    data = results / "data" / source
    manifest = pd.read_parquet(data / "manifest.parquet")
    splits = pd.read_csv(data / "splits.csv", dtype={"image_id": str})
    assert sorted(splits["image_id"]) == sorted(manifest["image_id"])
    assert set(splits["split"]) <= {"train", "val", "test"}
    summary = json.loads((data / "shards" / "manifest.json").read_text())
    reader = ShardReader(data / "shards")
    quarantined = pd.read_csv(data / "shards" / "quarantine.csv")
    assert len(reader) == len(manifest) - len(quarantined) == summary["images"]
    first = reader[reader.keys()[0]]
    assert first.shape == (SIZE, SIZE) and first.dtype == np.uint8


@pytest.mark.parametrize("source", ["mimic_cxr_jpg", "nih_cxr14", "rsna_pneumonia", "siim_acr"])
def test_synthcxr_datasets_become_splits_and_shards(run, source):
    _check_dataset(run / "results", source)


def test_real_covid_collection_goes_through_the_dag(run):
    if not (run / "covid.yaml").exists():
        pytest.skip(f"real data not found at {REAL_DATA}")
    _check_dataset(run / "results", "covid_chestxray")
    reader = ShardReader(run / "results" / "data" / "covid_chestxray" / "shards")
    masks = [reader.mask(key) for key in reader]
    assert all(m is not None and m.shape == (SIZE, SIZE) for m in masks)  # V7 lung masks
    assert all(m.any() for m in masks)
