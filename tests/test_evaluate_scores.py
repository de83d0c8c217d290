"""Evaluation metrics against hand-computed cases: thresholds chosen on validation, F1/accuracy,
NaN where undefined, overlap scores with empty sets, pointing game, pixel AUROC, the τ curves
and the seeded patient bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medslip.evaluate.scores import (
    auc,
    bootstrap_counts,
    classification,
    classification_draws,
    f1_accuracy,
    interval,
    mask_overlap,
    max_f1_threshold,
    patient_codes,
    pixel_auroc,
    pointing_game,
    threshold_curves,
    weighted_means,
)

LABELS = np.array([0, 0, 1, 1, 0, 1])
SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])


def test_max_f1_threshold_is_the_best_cut_and_nan_without_positives():
    # >= 0.35: TP 3, FP 1 -> F1 6/7; >= 0.8: TP 2 -> F1 0.8; >= 0.1: 3/(3 + 1.5) = 2/3
    threshold, f1 = max_f1_threshold(LABELS, SCORES)
    assert threshold == pytest.approx(0.35) and f1 == pytest.approx(6 / 7)
    assert all(np.isnan(max_f1_threshold(np.zeros(4), np.arange(4.0))))


def test_validation_threshold_is_applied_to_test_and_oracle_is_separate():
    val_threshold, _ = max_f1_threshold(np.array([0, 1, 1]), np.array([0.3, 0.6, 0.7]))
    assert val_threshold == pytest.approx(0.6)
    result = classification(LABELS, SCORES, val_threshold)
    # test at >= 0.6: predicted {0.8, 0.9}: TP 2, FN 1, FP 0 -> F1 0.8, accuracy 5/6
    assert result["f1"] == pytest.approx(0.8) and result["accuracy"] == pytest.approx(5 / 6)
    assert result["oracle_threshold"] == pytest.approx(0.35)
    assert result["oracle_f1"] == pytest.approx(6 / 7)
    assert result["oracle_accuracy"] == pytest.approx(5 / 6)
    assert result["auc"] == pytest.approx(8 / 9)  # one discordant pair (0.4 > 0.35)


def test_class_without_positives_gives_nan_not_an_error():
    labels = np.zeros(5)
    scores = np.linspace(0, 1, 5)
    result = classification(labels, scores, threshold=float("nan"))
    assert np.isnan(result["auc"]) and np.isnan(result["f1"]) and np.isnan(result["oracle_f1"])
    f1, accuracy = f1_accuracy(labels, scores, 0.5)
    assert np.isnan(f1) and accuracy == pytest.approx(0.4)


def test_weights_act_as_repeated_samples():
    weight = np.array([2, 0, 1, 1, 3, 0])
    repeated = np.repeat(np.arange(6), weight)
    assert auc(LABELS, SCORES, weight) == pytest.approx(auc(LABELS[repeated], SCORES[repeated]))
    assert f1_accuracy(LABELS, SCORES, 0.35, weight) == pytest.approx(
        f1_accuracy(LABELS[repeated], SCORES[repeated], 0.35)
    )


def test_vectorised_draws_equal_weighted_calls():
    rng = np.random.default_rng(0)
    labels = (rng.random(40) < 0.3).astype(int)
    scores = rng.random(40).round(2)  # with ties
    weights = rng.integers(0, 3, (6, 40))
    weights[0] = 0
    weights[0, labels == 0] = 1  # a resample without positives
    draws = classification_draws(labels, scores, 0.5, weights)
    for row, weight in zip(draws, weights, strict=True):
        keep = weight > 0
        expected = classification(labels[keep], scores[keep], 0.5, weight[keep])
        np.testing.assert_allclose(row, list(expected.values()), equal_nan=True)
    assert np.isnan(draws[0, [0, 1, 3, 4, 5]]).all()


def test_bootstrap_is_seeded_patient_level_and_paired():
    patients = np.array(["p2", "p1", "p1", "p3"])
    a, b = bootstrap_counts(patients, 200, seed=5), bootstrap_counts(patients, 200, seed=5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (200, 3) and (a.sum(axis=1) == 3).all()
    assert not np.array_equal(a, bootstrap_counts(patients, 200, seed=6))
    codes = patient_codes(patients)
    np.testing.assert_array_equal(codes, [1, 0, 0, 2])
    weights = a[:, codes]  # both p1 images carry p1's count
    assert (weights[:, 1] == weights[:, 2]).all()
    assert bootstrap_counts(np.array([]), 4, seed=1).shape == (4, 0)


def test_weighted_means_and_interval_ignore_nan():
    values = np.array([1.0, np.nan, 3.0])
    means = weighted_means(values, np.array([[1, 5, 1], [0, 1, 2], [0, 1, 0]]))
    np.testing.assert_allclose(means[:2], [2.0, 3.0])
    assert np.isnan(means[2])
    lo, hi = interval(np.array([*np.arange(101.0), np.nan]))
    assert (lo, hi) == pytest.approx((2.5, 97.5))
    assert all(np.isnan(interval(np.full(3, np.nan))))


def test_overlap_with_empty_truth_or_prediction():
    truth = torch.zeros(4, 3, 3, dtype=torch.bool)
    pred = torch.zeros(4, 3, 3, dtype=torch.bool)
    truth[1, 0, 0] = truth[2, :2, :] = truth[3, 0, :2] = True
    pred[0, 1, 1] = pred[2, 0, :] = pred[3, 0, :2] = True
    scores = {k: v.tolist() for k, v in mask_overlap(pred, truth).items()}
    # 0: empty truth; 1: empty prediction; 2: |P∩G| 3, |P| 3, |G| 6; 3: identical
    assert scores["dice"] == pytest.approx([0.0, 0.0, 6 / 9, 1.0])
    assert scores["iou"] == pytest.approx([0.0, 0.0, 0.5, 1.0])
    assert np.isnan(scores["recall"][0]) and scores["recall"][1:] == pytest.approx([0, 0.5, 1])
    assert scores["precision"] == pytest.approx([0.0, 0.0, 1.0, 1.0])
    both_empty = mask_overlap(pred[:1] & False, truth[:1])
    assert both_empty["dice"].item() == 1.0 and both_empty["iou"].item() == 1.0
    assert np.isnan(both_empty["precision"].item()) and np.isnan(both_empty["recall"].item())


def test_pointing_game_on_crafted_maps():
    maps = torch.zeros(3, 4, 4)
    truth = torch.zeros(3, 4, 4, dtype=torch.bool)
    truth[:, 0, 0] = True
    maps[0, 0, 0] = 1.0  # peak inside
    maps[1, 3, 3] = 1.0  # peak outside
    maps[2, 0, 0] = maps[2, 3, 3] = 1.0  # tied peaks, one inside
    assert pointing_game(maps, truth).tolist() == [True, False, True]


def test_pixel_auroc_with_ties_and_degenerate_truth():
    maps = torch.tensor([[[0.9, 0.5], [0.5, 0.1]], [[1.0, 1.0], [1.0, 1.0]]])
    truth = torch.tensor([[[True, True], [False, False]], [[True, False], [False, False]]])
    result = pixel_auroc(maps, truth)
    # image 0: pairs (0.9>0.5, 0.9>0.1, 0.5=0.5, 0.5>0.1) -> 3.5 / 4; image 1: all tied -> 0.5
    assert result == pytest.approx([0.875, 0.5])
    assert np.isnan(pixel_auroc(maps[:1], torch.ones(1, 2, 2, dtype=torch.bool))[0])


def test_threshold_curves_match_direct_counts():
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(5, 8, 8, generator=generator)
    maps[0, 0, 0] = 0.5  # exactly on the grid: not > 0.5
    truth = torch.rand(5, 8, 8, generator=generator) > 0.7
    grid = torch.arange(11) / 10
    pred_curve, inter_curve = threshold_curves(maps, truth, grid)
    for j, tau in enumerate(grid):
        pred = maps > tau
        assert pred_curve[:, j].tolist() == pred.flatten(1).sum(1).tolist()
        assert inter_curve[:, j].tolist() == (pred & truth).flatten(1).sum(1).tolist()


def test_attention_entropy_is_log_tokens_for_a_uniform_map_and_zero_for_a_peak():
    from medslip.evaluate.grounding import attention_entropy

    maps = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.0, 3.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    got = attention_entropy(maps).tolist()
    assert got == pytest.approx([math.log(4), 0.0, math.log(2)])
