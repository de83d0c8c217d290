"""Metric functions of the evaluations: classification at chosen thresholds, overlap scores of
binary masks, pointing game, pixel AUROC, and patient-level bootstrap intervals.

Conventions (stated once, used everywhere):

* a score ``s`` is called positive at threshold ``t`` when ``s >= t`` (scikit-learn's
  ``precision_recall_curve`` convention, so F1 at the max-F1 threshold equals the max F1);
* a metric that needs both classes (AUC) or positives (F1, a max-F1 threshold) is NaN when the
  data lack them; callers record a note, nothing raises;
* overlap of a prediction P with a truth G: Dice = 2|P∩G| / (|P| + |G|), IoU = |P∩G| / |P∪G|,
  both 1 when P and G are empty; recall = |P∩G| / |G| (NaN for empty G); precision =
  |P∩G| / |P|, 0 for an empty P with a non-empty G, NaN when both are empty.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import rankdata
from sklearn.metrics import precision_recall_curve, roc_auc_score
from torch import Tensor

CONFIDENCE = 0.95


def _has_both(labels: np.ndarray, weight: np.ndarray | None) -> bool:
    present = labels if weight is None else labels[weight > 0]
    return bool((present == 1).any() and (present == 0).any())


def auc(labels: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None) -> float:
    """ROC AUC (scikit-learn) of 0/1 ``labels`` (N,) against ``scores`` (N,), optionally with
    sample weights (N,); NaN unless both classes are present."""
    if not _has_both(labels, weight):
        return float("nan")
    return float(roc_auc_score(labels, scores, sample_weight=weight))


def max_f1_threshold(
    labels: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None
) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over every threshold of ``scores``; (NaN, NaN) without a
    positive. The paper protocol picks this on test; we pick it on validation."""
    positives = labels == 1 if weight is None else (labels == 1) & (weight > 0)
    if not positives.any():
        return float("nan"), float("nan")
    precision, recall, thresholds = precision_recall_curve(labels, scores, sample_weight=weight)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


def f1_accuracy(
    labels: np.ndarray, scores: np.ndarray, threshold: float, weight: np.ndarray | None = None
) -> tuple[float, float]:
    """(F1, accuracy) of ``scores >= threshold``; NaN for a NaN threshold, F1 NaN without
    positives."""
    if np.isnan(threshold) or len(labels) == 0:
        return float("nan"), float("nan")
    w = np.ones(len(labels)) if weight is None else weight.astype(float)
    pred, truth = scores >= threshold, labels == 1
    tp, fp, fn = (
        (w * (pred & truth)).sum(),
        (w * (pred & ~truth)).sum(),
        (w * (~pred & truth)).sum(),
    )
    accuracy = (w * (pred == truth)).sum() / w.sum()
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn > 0 else float("nan")
    return float(f1), float(accuracy)


def classification(
    labels: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    weight: np.ndarray | None = None,
) -> dict[str, float]:
    """Test metrics of one class: ``auc``; ``f1``/``accuracy`` at the validation ``threshold``;
    ``oracle_threshold``/``oracle_f1``/``oracle_accuracy`` at the max-F1 threshold of these
    very data (the paper protocol)."""
    f1, accuracy = f1_accuracy(labels, scores, threshold, weight)
    oracle_t, _ = max_f1_threshold(labels, scores, weight)
    oracle_f1, oracle_accuracy = f1_accuracy(labels, scores, oracle_t, weight)
    return {
        "auc": auc(labels, scores, weight),
        "f1": f1,
        "accuracy": accuracy,
        "oracle_threshold": oracle_t,
        "oracle_f1": oracle_f1,
        "oracle_accuracy": oracle_accuracy,
    }


def classification_draws(
    labels: np.ndarray, scores: np.ndarray, threshold: float, weights: np.ndarray
) -> np.ndarray:
    """:func:`classification` under every row of sample ``weights`` (R, N) at once, columns in
    its key order -> float (R, 6); equal to calling it with each row as ``weight`` (the
    max-F1 search takes the lowest threshold among equal maxima, as there; floating-point
    rounding may break exact ties differently)."""
    values, group = np.unique(scores, return_inverse=True)  # ascending distinct scores
    onehot = np.zeros((len(scores), len(values)))
    onehot[np.arange(len(scores)), group] = 1.0
    w = weights.astype(float)
    pos, neg = w @ (onehot * (labels == 1)[:, None]), w @ (onehot * (labels == 0)[:, None])
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    below = np.cumsum(neg, axis=1) - neg
    with np.errstate(invalid="ignore", divide="ignore"):
        auc_r = (pos * (below + neg / 2)).sum(1) / (n_pos * n_neg)
        tp, fp = np.cumsum(pos[:, ::-1], 1)[:, ::-1], np.cumsum(neg[:, ::-1], 1)[:, ::-1]
        f1 = np.nan_to_num(2 * tp / (tp + fp + n_pos[:, None]))
        f1[pos + neg == 0] = -1.0  # scores no sample of the resample has
        best = np.argmax(f1, axis=1)  # the lowest threshold among the maxima
        rows = np.arange(len(w))
        oracle_acc = (tp[rows, best] + n_neg - fp[rows, best]) / (n_pos + n_neg)
        pred = (scores >= threshold).astype(float)
        tp_t, fp_t = w @ (pred * (labels == 1)), w @ (pred * (labels == 0))
        f1_t = 2 * tp_t / (tp_t + fp_t + n_pos)
        acc_t = (tp_t + n_neg - fp_t) / (n_pos + n_neg)
    out = np.stack([auc_r, f1_t, acc_t, values[best], f1[rows, best], oracle_acc], axis=1)
    out[(n_pos == 0) | (n_neg == 0), 0] = np.nan
    out[n_pos == 0, 1] = out[n_pos == 0, 3] = out[n_pos == 0, 4] = out[n_pos == 0, 5] = np.nan
    if np.isnan(threshold):
        out[:, 1:3] = np.nan
    return out


def bootstrap_counts(patients: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Patient-level bootstrap: (n_resamples, P) int32 draw counts of the P distinct
    ``patients`` (sorted), each resample drawing P patients with replacement. The same
    ``seed`` and patient set give the same resamples (paired across models)."""
    n = len(np.unique(patients))
    if n == 0:
        return np.zeros((n_resamples, 0), dtype=np.int32)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(np.int32)


def patient_codes(patients: np.ndarray) -> np.ndarray:
    """(N,) index of each row's patient in ``np.unique(patients)`` (the columns of
    :func:`bootstrap_counts`)."""
    return np.unique(patients, return_inverse=True)[1]


def interval(values: np.ndarray) -> tuple[float, float]:
    """Percentile 95 % interval of bootstrap ``values`` (R,), ignoring NaN resamples (a
    resample without positives); (NaN, NaN) when all are NaN."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = 100 * (1 - CONFIDENCE) / 2
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Means of ``values`` (N,) under each row of ``weights`` (R, N), NaN values left out;
    (R,) (NaN where a row weights no finite value)."""
    finite = np.isfinite(values)
    w = weights * finite
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ np.where(finite, values, 0.0)) / w.sum(axis=1)


def overlap(inter: Tensor, pred: Tensor, truth: Tensor) -> dict[str, Tensor]:
    """Dice, IoU, recall, precision from pixel counts |P∩G|, |P|, |G| (any equal shapes),
    with the empty-set conventions of the module docstring."""
    inter, pred, truth = inter.double(), pred.double(), truth.double()
    nan = torch.full_like(inter, float("nan"))
    union = pred + truth - inter
    both_empty = (pred == 0) & (truth == 0)
    return {
        "dice": torch.where(both_empty, 1.0, 2 * inter / (pred + truth).clamp(min=1)),
        "iou": torch.where(both_empty, 1.0, inter / union.clamp(min=1)),
        "recall": torch.where(truth > 0, inter / truth.clamp(min=1), nan),
        "precision": torch.where(
            pred > 0, inter / pred.clamp(min=1), torch.where(truth > 0, 0.0, nan)
        ),
    }


def mask_overlap(pred: Tensor, truth: Tensor) -> dict[str, Tensor]:
    """:func:`overlap` of bool masks pred, truth (N, H, W) -> each (N,)."""
    return overlap(
        (pred & truth).flatten(1).sum(1), pred.flatten(1).sum(1), truth.flatten(1).sum(1)
    )


def pointing_game(maps: Tensor, truth: Tensor) -> Tensor:
    """Hit (bool (N,)) when some pixel equal to the maximum of ``maps`` (N, H, W) lies in the
    bool ``truth`` (N, H, W)."""
    flat = maps.flatten(1)
    top = flat == flat.amax(dim=1, keepdim=True)
    return (top & truth.flatten(1)).any(dim=1)


def pixel_auroc(maps: Tensor, truth: Tensor) -> np.ndarray:
    """Per-map AUROC of pixel values ``maps`` (N, H, W) against bool ``truth`` (N, H, W)
    (Mann-Whitney with average ranks for ties) -> float64 (N,); NaN where the truth is
    empty or covers the whole map."""
    values = maps.flatten(1).double().cpu().numpy()
    inside = truth.flatten(1).cpu().numpy()
    ranks = rankdata(values, axis=1)
    n_pos = inside.sum(axis=1).astype(float)
    n_neg = inside.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (ranks * inside).sum(axis=1) - n_pos * (n_pos + 1) / 2
        out = u / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), out, np.nan)


def threshold_curves(maps: Tensor, truth: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
    """|P(τ)| and |P(τ)∩G| for every τ of the sorted ``grid`` (K,), P(τ) = maps > τ:
    two int64 (N, K) from ``maps`` (N, H, W) and bool ``truth`` (N, H, W), by one bucketing
    of the pixels (no loop over τ)."""
    n, k = maps.shape[0], grid.numel()
    bucket = torch.bucketize(maps.flatten(1).contiguous(), grid.to(maps.device))  # #{τ < v}
    ones = torch.ones_like(bucket)
    counts = torch.zeros(n, k + 1, dtype=torch.int64, device=maps.device)
    every = counts.scatter_add(1, bucket, ones)
    inside = counts.scatter_add(1, bucket, truth.flatten(1).long())
    # v > τ_j  <=>  bucket(v) > j: suffix sums over buckets j+1 .. k
    suffix = lambda c: c.flip(1).cumsum(1).flip(1)[:, 1:]  # noqa: E731
    return suffix(every), suffix(inside)
