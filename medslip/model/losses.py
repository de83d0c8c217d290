"""The pretraining losses of ``forward`` of the official `PreTrain_MeDSLIP/models/model_MeDSLIP.py`,
vectorised (no loop over items or queries).

Notation: ``M`` (B, 51, 75) in {-1, 0, 1} indexed [landmark, entity]. For a stream with Q
queries and P partners (pathology: Q = 75 entities, P = 51 landmarks, ``positive = (M == 1)ᵀ``;
anatomy: Q = 51, P = 75, ``positive = M == 1``), a query is positive (e = 1) iff it has a
positive partner.

Every loss is a mean over the cells it is defined on; with no such cell in the batch it is an
exact 0 that stays connected to the autograd graph (never NaN), so every parameter feeding it
still receives a (zero) gradient, as DDP needs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from medslip.errors import MedslipError
from medslip.vocab import UNSEEN_ENTITY_INDICES


def existence_labels(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """M (B, 51, 75) -> e_p (B, 75), e_a (B, 51), long in {-1, 0, 1} (the official
    `PreTrain_MeDSLIP/dataset/dataset.py`).

    1 if any partner cell is 1, else 0 if any is 0, else -1 (ignored).
    """

    def label(dim: int) -> Tensor:
        present = (matrix == 1).any(dim=dim)
        absent = (matrix == 0).any(dim=dim)
        return torch.where(present, 1, torch.where(absent, 0, -1))

    return label(1), label(2)


def excluded_entities(exclude_class: bool, device: torch.device) -> Tensor | None:
    """The entity indices the ``exclude_class`` switch leaves out (K,) long, or None when off."""
    return torch.tensor(UNSEEN_ENTITY_INDICES, device=device) if exclude_class else None


def without_entities(
    e_p: Tensor, positive_p: Tensor, entities: Tensor | None
) -> tuple[Tensor, Tensor]:
    """The pathology labels with ``entities`` (K,) long left out (``exclude_class``): their
    existence labels e_p (B, 75) become -1 (ignored) and their rows of positive_p (B, 75, 51)
    False, so no existence or contrastive term is computed on them. ``None``: unchanged."""
    if entities is None or not len(entities):
        return e_p, positive_p
    e_p, positive_p = e_p.clone(), positive_p.clone()
    e_p[:, entities] = -1
    positive_p[:, entities] = False
    return e_p, positive_p


def stream_existence_labels(matrix: Tensor, exclude_class: bool) -> dict[str, Tensor]:
    """The existence labels each stream's loss sees: {"pathology": e_p (N, 75) without the
    entities ``exclude_class`` leaves out, "anatomy": e_a (N, 51)} from M (N, 51, 75)."""
    e_p, e_a = existence_labels(matrix)
    exclude = excluded_entities(exclude_class, matrix.device)
    e_p, _ = without_entities(e_p, (matrix == 1).transpose(1, 2), exclude)
    return {"pathology": e_p, "anatomy": e_a}


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask``; 0 (graph-connected) when the mask is empty."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def existence_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """2-way cross-entropy, logits (B, Q, 2) vs labels (B, Q) in {-1, 0, 1}, mean over labels
    != -1 (``forward`` of the official `PreTrain_MeDSLIP/models/model_MeDSLIP.py`)."""
    valid = labels >= 0
    ce = F.cross_entropy(logits.flatten(0, 1), labels.clamp(min=0).flatten(), reduction="none")
    return _masked_mean(ce, valid.flatten())


def sample_negatives(
    candidates: Tensor, n: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """``n`` distinct random candidates per row, without replacement.

    candidates (B, Q, P) bool -> idx (B, Q, n) long, valid (B, Q, n) bool. Uniform random keys
    (drawn with ``generator``, which must live on ``candidates.device``) are ranked, candidates
    first, so the first ``n`` indices are a uniform sample of the candidates. A row with fewer
    than ``n`` candidates fills the missing slots with non-candidate indices marked invalid;
    losses drop invalid slots from the softmax. Same generator state -> same sample.
    """
    if n > candidates.shape[-1]:
        raise MedslipError(f"n_negatives {n} exceeds the {candidates.shape[-1]} partners")
    keys = torch.rand(candidates.shape, generator=generator, device=candidates.device)
    keys = keys.masked_fill(~candidates, -1.0)
    top, idx = keys.topk(n, dim=-1)
    return idx, top >= 0


def _contrastive(
    s0: Tensor, scores: Tensor, negatives: Tensor, valid: Tensor, rows: Tensor
) -> Tensor:
    """Mean over ``rows`` (B, Q) of −log softmax(slot 0) over [s0, valid negative scores].

    s0 (B, Q), scores (B, Q, P) of every partner, negatives/valid (B, Q, n).
    """
    negative = scores.gather(-1, negatives).masked_fill(~valid, -math.inf)
    logits = torch.cat([s0.unsqueeze(-1), negative], dim=-1)
    return _masked_mean(torch.logsumexp(logits, dim=-1) - s0, rows)


def prototypes(positive: Tensor, books: Tensor) -> Tensor:
    """Mean partner embedding of each query's positives: ``1[M=1] @ T / count``.

    positive (B, Q, P) bool, books (P, D) -> (B, Q, D); zero for a query with no positive.
    """
    weights = positive.to(books.dtype)
    return (weights @ books) / weights.sum(dim=-1, keepdim=True).clamp(min=1)


def prior_rates(train: Tensor) -> Tensor:
    """The image-blind prior (Q,) float64: each query's positive rate among the known ``train``
    labels (N, Q) in {-1, 0, 1}, in [1e-6, 1 - 1e-6]; 0.5 for a query never labelled."""
    known = (train >= 0).sum(0)
    rate = ((train == 1).sum(0) / known.clamp(min=1)).double().clamp(1e-6, 1 - 1e-6)
    return torch.where(known > 0, rate, torch.full_like(rate, 0.5))


def prior_existence_loss(train: Tensor, val: Tensor) -> float:
    """The existence loss of the image-blind prior (:func:`prior_rates` of ``train``), scored
    like :func:`existence_loss` on the ``val`` labels (M, Q). A stream that learns from images
    has a validation loss below this."""
    rate = prior_rates(train)
    logits = torch.stack([(1 - rate).log(), rate.log()], dim=-1)  # (Q, 2)
    return float(existence_loss(logits.expand(len(val), -1, -1), val.long()))


def protocl_loss(
    query: Tensor, positive: Tensor, books: Tensor, negatives: Tensor, valid: Tensor
) -> Tensor:
    """ProtoCL of one stream (``forward`` of the official
    `PreTrain_MeDSLIP/models/model_MeDSLIP.py`), raw dot products, no temperature.

    query (B, Q, D) = cl_fc(Dropout H), positive (B, Q, P) bool, books (P, D) partner text
    embeddings, negatives/valid (B, Q, n) from :func:`sample_negatives` on ``~positive``.
    s_0 = q·prototype, s_i = q·t_{neg_i}; mean over positive queries of −log softmax(s)_0.
    """
    s0 = (query * prototypes(positive, books)).sum(dim=-1)
    return _contrastive(s0, query @ books.T, negatives, valid, positive.any(dim=-1))


def position_loss(
    query: Tensor,
    positive: Tensor,
    books: Tensor,
    chosen: Tensor,
    negatives: Tensor,
    valid: Tensor,
) -> Tensor:
    """MedKLIP's position loss (``forward`` of the official
    `PreTrain_MeDSLIP/models/model_MeDSLIP.py`, its position term): as ProtoCL but slot 0 is the
    embedding of ONE random positive partner ``chosen`` (B, Q) long instead of the prototype."""
    scores = query @ books.T
    s0 = scores.gather(-1, chosen.unsqueeze(-1)).squeeze(-1)
    return _contrastive(s0, scores, negatives, valid, positive.any(dim=-1))


def icl_loss(logits: Tensor, matrix: Tensor) -> Tensor:
    """ICL (``forward`` of the official `PreTrain_MeDSLIP/models/model_MeDSLIP.py`):
    BCE-with-logits of H_p·H_aᵀ (B, 51, 75) vs M over cells M >= 0."""
    known = matrix >= 0
    bce = F.binary_cross_entropy_with_logits(
        logits, matrix.clamp(min=0).to(logits.dtype), reduction="none"
    )
    return _masked_mean(bce, known)


def clip_loss(image: Tensor, text: Tensor, logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE over the batch: image, text (B, d) L2-normalised, logits scaled by
    ``logit_scale.exp()`` (B, B), matching pairs on the diagonal."""
    logits = logit_scale.exp() * image @ text.T
    target = torch.arange(image.shape[0], device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
