"""The model-free grounding controls: a floor (image brightness, the training mean map) and a
ceiling (the truth on the model's token grid) beside every model in the grounding table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from medslip.cli import main
from medslip.config import validate_config
from medslip.layout import EVAL_FILES, GROUNDING_CONTROLS, control_dir
from medslip.settings import STRIDE
from medslip.tables.collect import read_metrics
from medslip.tables.paper import zero_shot_grounding
from tests.test_evaluate_command import _write_data

CONFIG = {"seed": 3, "evaluate": {"bootstrap": 20, "batch_size": 5}}


@pytest.fixture(scope="module")
def controls(tmp_path_factory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("controls")
    data = _write_data(root)
    args = ["evaluate", "controls", "--config", json.dumps(CONFIG), "--data", str(data)]
    assert main([*args, "--dataset", "rsna_pneumonia", "--out", str(root / "eval")]) == 0
    out = {}
    for control in GROUNDING_CONTROLS:
        folder = Path(control_dir("rsna_pneumonia", control, str(root / "eval")))
        assert (folder / EVAL_FILES["predictions"]).is_file()
        out[control] = folder / EVAL_FILES["metrics"]
    return out


def _read(controls: dict[str, Path]) -> dict[str, dict]:
    return {c: json.loads(path.read_text()) for c, path in controls.items()}


def test_controls_are_written_like_model_runs(controls):
    for control, metrics in _read(controls).items():
        assert metrics["task"] == "grounding" and metrics["variant"] == f"control_{control}"
        official = metrics["truths"]["official"]
        assert official["n_test"] == 3 and official["n_val"] == 2  # as for every model
        assert 0 <= official["macro"]["pixel_auroc"] <= 1


def test_the_oracle_is_the_ceiling_and_the_floors_are_below_it(controls):
    read = _read(controls).items()
    auroc = {c: m["truths"]["official"]["macro"]["pixel_auroc"] for c, m in read}
    assert auroc["oracle"] > 0.95
    assert auroc["brightness"] < auroc["oracle"] and auroc["mean_map"] < auroc["oracle"]


def test_control_entropy_is_on_the_model_token_grid(controls):
    """The controls' maps are scored on the default (demo) preset's token grid: its input side
    over the trunk's stride, squared (128 px: 8 × 8)."""
    side = validate_config({})["presets"]["demo"]["model"]["image_size"] // STRIDE
    for metrics in _read(controls).values():
        uniform = metrics["protocol"]["uniform_entropy"]
        assert uniform == pytest.approx(math.log(side * side))
        assert 0 < metrics["truths"]["official"]["macro"]["attention_entropy"] <= uniform + 1e-9


def test_the_grounding_table_lists_the_controls(controls):
    metrics = read_metrics([str(p) for p in controls.values()])
    table = zero_shot_grounding(metrics, {"rsna_pneumonia": "SynthCXR"})
    listed = set(table.frame["variant"])
    assert {f"control_{c}" for c in GROUNDING_CONTROLS} <= listed


def test_model_tasks_still_need_their_model(tmp_path, caplog):
    args = ["evaluate", "zeroshot", "--config", json.dumps(CONFIG), "--data", str(tmp_path)]
    assert main([*args, "--dataset", "rsna_pneumonia", "--out", str(tmp_path / "o")]) != 0
    assert "--run-dir is required" in caplog.text
