"""One tiny end-to-end run of the whole DAG (`all` on `.test/config.yaml`) through Snakemake; with
the real COVID-19 image collection of ../shared/data/real added as a data source when present."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from medslip.data import ShardReader
from medslip.labels import PRESENCE_RANK
from medslip.layout import GROUNDING_CONTROLS, RUN_FILES, TABLES, model_card_path
from medslip.pretrain.checkpoint import load_pretrained
from medslip.variants import VARIANTS as REGISTRY
from tests._workflow import snakemake
from tests.conftest import REAL_DATA, REPO

pytestmark = pytest.mark.e2e
VARIANTS = [v.name for v in REGISTRY.values() if not v.imported]
"""The variants .test/config.yaml pretrains (every one the workflow trains)."""
SIZE = yaml.safe_load((REPO / ".test/config.yaml").read_text())["data"]["image_size"]


@pytest.fixture(scope="module")
def run(e2e_workdir):
    return e2e_workdir


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


def test_snakemake_report_has_every_table_and_figure(run):
    res = snakemake(run, "--report", "results/report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (run / "results" / "report.html").read_text(errors="replace")
    tables = sorted((run / "results" / "tables").glob("*.csv"))
    figures = sorted((run / "results" / "figures").glob("*.png"))
    assert {p.stem for p in tables} == set(TABLES)
    assert {"synthcxr_examples", "ablation", "disentanglement"} <= {p.stem for p in figures}
    missing = [p.name for p in tables + figures if p.name not in html]
    assert not missing, f"not in the report: {missing}"
    for category in ("Data", "Reports", "Pretraining", "Zero-shot", "Fine-tuning", "Ablation"):
        assert category in html, category


def test_ablation_table_has_one_row_per_variant_and_source(run):
    table = pd.read_csv(run / "results" / "tables" / "ablation.csv")
    synthetic = table[table["source"] == "SynthCXR"]
    controls = [f"control_{c}" for c in GROUNDING_CONTROLS]  # grounding columns only
    listed = synthetic["variant"].tolist()
    assert listed[: len(VARIANTS)] == VARIANTS and sorted(listed[len(VARIANTS) :]) == controls
    assert synthetic.set_index("variant").loc[controls].filter(like="zeroshot").isna().all().all()
    assert (synthetic["split"] == "test").all()
    na = synthetic.set_index("variant").loc["random_init"]
    assert pd.isna(na.filter(like="zeroshot_auc_").iloc[0])  # no zero-shot head: empty, not 0
    trained = synthetic.set_index("variant").loc["medslip"]
    assert np.isfinite(trained["zeroshot_auc_nih_cxr14"])  # tiny RSNA/SIIM test splits: one class
    if (run / "covid.yaml").exists():  # the real lung segmentation rows stay apart
        real = table[table["source"] == "real"]
        assert set(real["variant"]) <= set(VARIANTS) and len(real)
        lungs = pd.read_csv(run / "results" / "tables" / "real_lung_segmentation.csv")
        assert (lungs["source"] == "real").all() and len(lungs)


def test_reports_of_the_manifest_studies_become_label_matrices(run):
    out = run / "results" / "reports" / "mimic_cxr"
    manifest = pd.read_parquet(run / "results" / "data" / "mimic_cxr_jpg" / "manifest.parquet")
    truth = run / "results" / "synthcxr" / "ground_truth" / "mimic_cxr_jpg"
    studies = pd.read_parquet(truth / "studies.parquet")
    ids = (out / "report_ids.txt").read_text().split()
    assert ids == sorted(set(manifest["study_id"])) == sorted(studies["study_id"])  # one key
    matrix, uncertain = np.load(out / "label_matrix.npy"), np.load(out / "uncertain_mask.npy")
    assert matrix.shape == uncertain.shape == (len(ids), 51, 75)
    assert matrix.dtype == np.int8 and set(np.unique(matrix)) <= {-1, 0, 1}
    assert (matrix == 1).any() and (matrix == 0).any()
    assert uncertain.dtype == bool and uncertain.any()
    triplets = pd.read_parquet(out / "triplets.parquet")
    assert set(triplets["report_id"]) <= set(ids)


def _facts(frame: pd.DataFrame, key: str) -> set[tuple[str, str, str, str]]:
    """(study, pathology, anatomy, presence) per report cell, present > uncertain > absent;
    ``excluded_obs`` is left out (the SynthCXR writer never states it)."""
    rank = frame["presence"].map(PRESENCE_RANK)
    best = frame.assign(rank=rank).sort_values("rank").groupby([key, "pathology", "anatomy"]).last()
    return {(*cell, p) for cell, p in best["presence"].items() if cell[1] != "excluded_obs"}


def test_parsed_triplets_match_the_synthcxr_ground_truth(run):
    truth = pd.read_parquet(
        run / "results" / "synthcxr" / "ground_truth" / "mimic_cxr_jpg" / "triplets.parquet"
    )
    parsed = pd.read_parquet(run / "results" / "reports" / "mimic_cxr" / "triplets.parquet")
    gold, ours = _facts(truth, "study_id"), _facts(parsed, "report_id")
    assert len(gold) > 20
    tp = len(gold & ours)
    f1 = 2 * tp / (len(gold) + len(ours))
    assert f1 >= 0.95, sorted(gold ^ ours)[:20]


def _check_dataset(results: Path, source: str) -> None:
    """Splits partition the manifest and the shards hold every image that was not quarantined."""
    data = results / "data" / source
    manifest = pd.read_parquet(data / "manifest.parquet")
    splits = pd.read_csv(data / "splits.csv", dtype={"image_id": str})
    assert sorted(splits["image_id"]) == sorted(manifest["image_id"])
    assert set(splits["split"]) <= {"train", "val", "test"}
    summary = json.loads((data / "shards" / "summary.json").read_text())
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


def test_every_variant_is_pretrained_with_its_provenance(run):
    models = run / "results" / "models"
    counts = pd.read_csv(models / "pretrain_data" / "counts.csv")
    assert counts.query("kind == 'images' and status == 'joined'")["total"].item() > 0
    for variant in VARIANTS:
        run_dir = models / variant / "seed0"
        meta = json.loads((run_dir / RUN_FILES["meta"]).read_text())
        assert meta["variant"] == variant and meta["seed"] == 0
        assert meta["text_books"]["books_sha256"]
        model = load_pretrained(run_dir, models / "text_books.safetensors")
        probability = model.existence_probability(torch.zeros(2, 3, 64, 64))
        assert probability.shape == (2, 75)
        trained = variant != "random_init"
        assert (run_dir / RUN_FILES["epochs"]).is_file() == trained


def test_every_run_has_a_model_card_with_its_numbers(run):
    for variant in VARIANTS:
        card = (run / model_card_path(variant, 0)).read_text()
        front = yaml.safe_load(card.split("---\n")[1])
        assert front["model-index"][0]["name"] == f"{variant}-seed0"
        assert "**Not a medical device.**" in card and "## Evaluation" in card
    zeroshot = json.loads(
        (run / "results/eval/zeroshot/nih_cxr14/medslip/seed0/metrics.json").read_text()
    )
    card = (run / model_card_path("medslip", 0)).read_text()
    assert f"{zeroshot['macro']['auc']:.3f} [" in card and "**Trained on SynthCXR**" in card
