"""Fine-tuning building blocks: the explicit trunk transfer (and its refusals), the U-Net shape,
the Dice/IoU conventions on crafted masks, and model selection on validation, never test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from medslip.errors import MedslipError
from medslip.evaluate.scores import mask_overlap
from medslip.evaluate.truth import box_mask
from medslip.finetune.cls import build_classifier
from medslip.finetune.common import FitResult, fit, read_weights
from medslip.finetune.seg import overlap_summary
from medslip.finetune.unet import ResUNet
from tests.test_finetune_e2e import _settings, save_run, tiny_settings


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {v: save_run(root, v) for v in ("medslip", "medklip", "global_clip")}


def _meta(variant: str) -> dict:
    return {"variant": variant, "seed": 0, "model": _settings(variant).to_dict()}


def test_trunk_loads_by_explicit_name_mapping(runs):
    state = read_weights(runs["medslip"])
    model, report = build_classifier(_meta("medslip"), state, 2, True, "run")
    trunk = {k: v for k, v in state.items() if k.startswith("res_features.")}
    assert report["n_loaded"] == len(trunk) and report["n_missing"] == 0
    assert report["n_unexpected"] == 0 and report["n_other_file_keys"] == len(state) - len(trunk)
    own = model.state_dict()
    for key, tensor in trunk.items():
        torch.testing.assert_close(own[key.removeprefix("res_features.")], tensor)
    assert "layer4.0.conv1.weight" in own and own["fc.weight"].shape == (2, 4 * 4 * 8)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)


def test_stream_transfer_alternative(runs):
    for variant in ("medslip", "medklip"):
        state = read_weights(runs[variant])
        model, report = build_classifier(_meta(variant), state, 1, False, "run")
        source = "res_l1_pathology" if variant == "medslip" else "res_l1"
        torch.testing.assert_close(model.res_l1_pathology.weight, state[f"{source}.weight"])
        assert (model.mask_generator is not None) == (variant == "medslip")
        assert report["n_missing"] == 0
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1)
    with pytest.raises(MedslipError, match="no pathology stream"):
        build_classifier(_meta("global_clip"), read_weights(runs["global_clip"]), 1, False, "run")


def test_a_file_that_matches_nothing_is_refused(tmp_path, runs):
    save_file({"decoder.weight": torch.zeros(3, 3)}, tmp_path / "model.safetensors")
    with pytest.raises(MedslipError, match="no pretrained key maps"):
        build_classifier(_meta("medslip"), read_weights(tmp_path), 1, True, "run")
    # trunk names of another width: names match, shapes do not -> nothing loads
    state = read_weights(runs["medslip"])
    other = {k: torch.zeros([2 * s for s in v.shape] or [2]) for k, v in state.items()}
    with pytest.raises(MedslipError, match="no pretrained key maps"):
        build_classifier(_meta("medslip"), other, 1, True, "run")
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(MedslipError, match="cannot read the pretrained weights"):
        read_weights(tmp_path)


def test_unet_output_has_the_input_size():
    model = ResUNet((1, 1, 1), 4, 1, 0.1).eval()
    for shape in ((2, 3, 32, 32), (1, 3, 64, 48)):
        assert model(torch.randn(*shape)).shape == (shape[0], 1, *shape[2:])
    with pytest.raises(MedslipError, match="divide by 16"):
        model(torch.randn(1, 3, 40, 40))


def test_dice_iou_conventions_on_crafted_masks():
    pred = torch.zeros(4, 8, 8, dtype=torch.bool)
    truth = torch.zeros(4, 8, 8, dtype=torch.bool)
    # 0: both empty -> 1; 1: empty truth, non-empty prediction -> 0
    pred[1, :2, :2] = True
    # 2: |P| = 8, |G| = 8, |P∩G| = 4: Dice 0.5, IoU 4/12
    pred[2, 0, :8] = True
    truth[2, 0, 4:8] = truth[2, 1, 4:8] = True
    # 3: empty prediction, non-empty truth -> 0
    truth[3, 5:, 5:] = True
    out = mask_overlap(pred, truth)
    torch.testing.assert_close(out["dice"], torch.tensor([1.0, 0.0, 0.5, 0.0], dtype=torch.double))
    torch.testing.assert_close(out["iou"], torch.tensor([1.0, 0.0, 1 / 3, 0.0], dtype=torch.double))
    values = {k: out[k].numpy() for k in ("dice", "iou")} | {
        "truth": truth.flatten(1).sum(1).numpy()
    }
    frame = pd.DataFrame({"patient_id": ["a", "b", "c", "d"]})
    summary = overlap_summary(frame, values, tiny_settings(bootstrap=50))
    assert summary["dice"] == pytest.approx(1.5 / 4)
    assert summary["dice_nonempty"] == pytest.approx(0.25)  # images 2 and 3
    assert summary["n_empty_truth"] == 2 and summary["n_nonempty_truth"] == 2
    lo, hi = summary["dice_ci"]
    assert 0 <= lo <= summary["dice"] <= hi <= 1


def test_box_mask_touching_pixels():
    mask = box_mask([[1.5, 2.0, 2.0, 1.0], [6.0, 6.0, 5.0, 5.0]], (8, 8))
    expected = np.zeros((8, 8), np.uint8)
    expected[2:3, 1:4] = 1  # x 1.5..3.5 touches columns 1..3
    expected[6:8, 6:8] = 1  # clipped at the border
    np.testing.assert_array_equal(mask, expected)


class _Counter(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.epoch = torch.nn.Parameter(torch.tensor(-1.0))


def _fit(val: list[float], patience: int | None) -> tuple[FitResult, _Counter, list[int]]:
    model, seen = _Counter(), []

    def train_epoch(epoch: int) -> float:
        with torch.no_grad():
            model.epoch.fill_(epoch)
        return 0.0

    def validate() -> dict[str, float]:
        seen.append(int(model.epoch))
        return {"val_auc": val[int(model.epoch)]}

    return fit(model, len(val), patience, train_epoch, validate, "val_auc"), model, seen


def test_selection_follows_validation_not_test():
    val = [0.60, 0.90, 0.70, 0.65, 0.95]
    test = [0.95, 0.55, 0.60, 0.70, 0.50]  # test would pick epoch 0
    result, model, seen = _fit(val, patience=2)
    assert result.best_epoch == 1 != int(np.argmax(test))
    assert model.epoch.item() == 1.0  # the kept weights are epoch 1's
    assert result.stopped_early and len(result.curve) == 4 and seen == [0, 1, 2, 3]
    result, model, _ = _fit(val, patience=None)
    assert result.best_epoch == 4 and model.epoch.item() == 4.0 and not result.stopped_early
    result, model, _ = _fit([float("nan")] * 3, patience=None)  # never better: keep the last
    assert result.best_epoch == 2 and np.isnan(result.best_score)
