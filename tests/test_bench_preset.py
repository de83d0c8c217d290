"""The demo preset's selection procedure (``medslip bench preset``): the committed selection file
names the schema's ``presets.demo``, candidates are checked, the choice follows the budget."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from medslip.benchmarks.preset import candidate_config, choose, read_selection
from medslip.config import defaults, load_config
from medslip.errors import MedslipError

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ROOT / "config" / "demo_selection.yaml"


def test_the_schema_demo_preset_is_the_chosen_candidate():
    """A change of ``presets.demo`` without rerunning the selection (or the reverse) fails."""
    config = load_config(ROOT / "config" / "config.yaml")
    selection = read_selection(SELECTION)
    chosen = [c for c in selection["candidates"] if c["name"] == selection["chosen"]]
    assert len(chosen) == 1, f"chosen: {selection['chosen']!r} is not a candidate"
    assert candidate_config(config, chosen[0])["presets"]["demo"] == config["presets"]["demo"]


def test_every_candidate_is_a_valid_preset_with_the_grid_floor():
    config = load_config(ROOT / "config" / "config.yaml")
    selection = read_selection(SELECTION)
    for candidate in selection["candidates"]:
        model = candidate_config(config, candidate)["presets"]["demo"]["model"]
        assert model["image_size"] // 16 >= selection["min_grid"], candidate["name"]


def test_a_misspelt_candidate_key_is_named():
    config = load_config(ROOT / "config" / "config.yaml")
    with pytest.raises(MedslipError, match="unknown train keys \\['epoch'\\]"):
        candidate_config(config, {"name": "typo", "train": {"epoch": 3}})


def test_the_choice_is_the_best_score_within_the_budget_and_grid():
    frame = pd.DataFrame(
        {
            "candidate": ["cheap", "best_but_slow", "coarse", "good"],
            "grid": [8, 8, 6, 8],
            "cpu_minutes": [2.0, 9.0, 1.0, 4.0],
            "score": [0.05, 0.30, 0.40, 0.12],
        }
    )
    out = choose(frame, cpu_minutes_max=4.5, min_grid=8)
    assert out.loc[out["chosen"], "candidate"].tolist() == ["good"]
    assert out["within_budget"].tolist() == [True, False, False, True]


def test_the_grounding_preset_is_the_demo_trained_for_30_epochs():
    """Only the epochs and the decoder depth it was measured with (two layers) differ."""
    presets = defaults()["presets"]
    demo, grounding = presets["demo"], presets["grounding"]
    assert grounding["model"] == {**demo["model"], "n_layers": 2}
    assert grounding["train"] == {**demo["train"], "epochs": 30}
    assert demo["train"]["epochs"] < 30
