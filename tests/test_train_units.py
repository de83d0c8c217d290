"""Pretraining pieces on small synthetic inputs: the study join, the uncertainty policy, the
official learning-rate schedule, laterality under flips, and the AdamW groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medslip.config import load_config
from medslip.data.dataset import PretrainAugment
from medslip.errors import MedslipError
from medslip.pretrain.join import apply_policy, join_pretraining
from medslip.pretrain.schedule import adamw, learning_rate
from medslip.settings import TrainSettings
from medslip.vocab import LANDMARK_INDEX, LANDMARKS, LATERAL_SWAP
from tests.conftest import REPO


def _paper_train() -> TrainSettings:
    config = load_config(REPO / "config/config.yaml")
    config["preset"] = "paper"
    return TrainSettings.from_config(config)


def test_join_gives_every_image_its_study_row_and_counts_the_rest():
    manifest = pd.DataFrame(
        {"image_id": ["a", "b", "c", "d", "e"], "study_id": ["50", "50", "51", "52", "53"]}
    )
    splits = pd.DataFrame({"image_id": list("abcde"), "split": ["train"] * 3 + ["val", "test"]})
    images, counts = join_pretraining(["53", "51", "50", "99"], manifest, splits, set("abce"))
    assert images.set_index("image_id")["row"].to_dict() == {"a": 2, "b": 2, "c": 1, "e": 0}
    table = counts.set_index(["kind", "status"])["total"].to_dict()
    assert table[("images", "joined")] == 4
    assert table[("images", "no_report")] == 1  # d: study 52 has no report
    assert table[("studies", "report_without_image")] == 1  # 99
    assert counts.set_index(["kind", "status"]).loc[("images", "joined"), "train"] == 3


def test_join_refuses_duplicate_study_rows():
    manifest = pd.DataFrame({"image_id": ["a"], "study_id": ["50"]})
    splits = pd.DataFrame({"image_id": ["a"], "split": ["train"]})
    with pytest.raises(MedslipError, match="study 50 twice"):
        join_pretraining(["50", "50"], manifest, splits, {"a"})


def test_uncertainty_policies():
    matrix = np.array([[[-1, 0, 1, -1]]], dtype=np.int8)
    uncertain = np.array([[[True, True, True, False]]])
    assert apply_policy(matrix, uncertain, "unmentioned").tolist() == [[[-1, 0, 1, -1]]]
    assert apply_policy(matrix, uncertain, "positive").tolist() == [[[1, 1, 1, -1]]]
    assert apply_policy(matrix, uncertain, "absent").tolist() == [[[0, 0, 1, -1]]]
    assert matrix.tolist() == [[[-1, 0, 1, -1]]]  # input untouched
    with pytest.raises(MedslipError, match="unknown uncertainty policy"):
        apply_policy(matrix, uncertain, "maybe")


def test_schedule_is_the_official_effective_one():
    train = _paper_train()
    assert learning_rate(train, 0, 0) == pytest.approx(1e-5)
    assert learning_rate(train, 0, 99) == pytest.approx(1e-5)
    assert learning_rate(train, 0, 100) == pytest.approx(2.8e-5)
    assert learning_rate(train, 0, 499) == pytest.approx(8.2e-5)
    assert learning_rate(train, 0, 500) == pytest.approx(1e-4)
    assert learning_rate(train, 0, 3000) == pytest.approx(1e-4)
    assert learning_rate(train, 50, 0) == pytest.approx(1e-5 + 0.5 * 9e-5)
    assert learning_rate(train, 99, 0) > 1e-5 > learning_rate(train, 99, 0) - 1e-7


def test_adamw_does_not_decay_biases_or_norms():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, no_decay = adamw(model, 1e-4, _paper_train().weight_decay).param_groups
    assert decay["weight_decay"] == 0.02 and len(decay["params"]) == 1
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3


def test_lateral_swap_mirrors_left_and_right():
    swap = np.array(LATERAL_SWAP)
    assert (swap[swap] == np.arange(len(LANDMARKS))).all()
    assert LANDMARKS[LATERAL_SWAP[LANDMARK_INDEX["left_lower_lung"]]] == "right_lower_lung"
    assert LANDMARKS[LATERAL_SWAP[LANDMARK_INDEX["trachea"]]] == "trachea"


def test_augment_reports_which_images_it_flipped():
    """A bright left half stays left unless the image was flipped."""
    images = torch.zeros(64, 1, 32, 32, dtype=torch.uint8)
    images[..., :16] = 255
    augment = PretrainAugment(
        size=32, scale=(1.0, 1.0), ratio=(1.0, 1.0), randaug_ops=1, randaug_level=0.0, channels=1
    )
    out, flipped = augment.apply(images, torch.Generator().manual_seed(0))
    left_brighter = out[..., :16].mean(dim=(1, 2, 3)) > out[..., 16:].mean(dim=(1, 2, 3))
    assert 0 < int(flipped.sum()) < 64
    assert torch.equal(left_brighter, ~flipped)


def test_step_flops_counts_forward_and_backward_per_image():
    """A linear layer: 2·in·out FLOPs per image forward, twice that backward (input and weight
    gradients)."""
    from medslip.benchmarks.train import step_flops

    layer = torch.nn.Linear(100, 50, bias=False)
    x = torch.randn(8, 100, requires_grad=True)

    def step() -> None:
        layer(x).sum().backward()

    assert step_flops(step, batch=8) == pytest.approx(6 * 100 * 50 / 1e9)


def test_bench_train_writes_each_case_and_keeps_other_devices_rows(tmp_path):
    """``medslip bench train`` rows name device, dtype and compile mode; a rerun replaces only
    its own rows, so a GPU run's rows (or ones written before the compile column) stay."""
    import pandas as pd

    from medslip.benchmarks.train import main
    from tests.conftest import REPO

    out = tmp_path / "train_speed.csv"
    gpu = {"device": "NVIDIA H200", "batch": 2, "dtype": "bf16", "case": "backbone"}
    pd.DataFrame([gpu | {"steps": 3, "images_per_s": 9000.0}]).to_csv(out, index=False)
    args = ["--config", str(REPO / "config" / "config.yaml"), "--preset", "demo"]
    args += ["--batches", "2", "--steps", "1", "--text-dim", "16", "--workers", "0"]
    assert main([*args, "--variants", "medklip", "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    assert list(rows["compile"]) == ["off"] * 4
    assert rows["device"].iloc[0] == "NVIDIA H200"
    mine = rows.iloc[1:]
    assert list(mine["case"]) == ["backbone", "medklip", "loader"]
    assert (mine["images_per_s"] > 0).all() and mine["gflop_per_image"].iloc[:2].gt(0).all()
    assert main([*args, "--variants", "medklip", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 4
