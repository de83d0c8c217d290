"""The vectorised losses against plain-loop implementations of ``forward`` of the official
`PreTrain_MeDSLIP/models/model_MeDSLIP.py` formulas."""

from __future__ import annotations

import math

import pytest
import torch

from medslip.errors import MedslipError
from medslip.model.losses import (
    clip_loss,
    existence_labels,
    existence_loss,
    icl_loss,
    position_loss,
    prior_existence_loss,
    protocl_loss,
    sample_negatives,
)

B, J, K, D = 3, 51, 75, 12  # batch, landmarks, entities, text dim
TOL = 1e-6


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one intra-op thread avoids oversubscribing the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_matrix(seed: int, batch: int = B, p_pos: float = 0.03, p_zero: float = 0.05):
    """(batch, 51, 75) long in {-1, 0, 1}, mostly -1 as real label matrices."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(batch, J, K, generator=gen)
    return torch.where(u < p_pos, 1, torch.where(u < p_pos + p_zero, 0, -1))


def randn(*shape: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)


# ---- plain-loop implementations of the label encoding (official `dataset.py`) and losses ---


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def neg_log_softmax0(scores: list[float]) -> float:
    top = max(scores)
    return -(scores[0] - top - math.log(sum(math.exp(s - top) for s in scores)))


def ref_labels(m: list) -> tuple[list, list]:
    e_p = [[1 if any(m[b][j][k] == 1 for j in range(J)) else
            0 if any(m[b][j][k] == 0 for j in range(J)) else -1 for k in range(K)]
           for b in range(len(m))]  # fmt: skip
    e_a = [[1 if any(m[b][j][k] == 1 for k in range(K)) else
            0 if any(m[b][j][k] == 0 for k in range(K)) else -1 for j in range(J)]
           for b in range(len(m))]  # fmt: skip
    return e_p, e_a


def ref_existence(logits: list, labels: list) -> float:
    losses = [
        neg_log_softmax0([logits[b][q][y], logits[b][q][1 - y]])
        for b in range(len(labels))
        for q, y in enumerate(labels[b])
        if y != -1
    ]
    return sum(losses) / len(losses) if losses else 0.0


def partners(m: list, b: int, q: int, stream: str) -> list[int]:
    """Positive partners of query q: landmarks j with M[j,q]=1 (pathology) or entities k with
    M[q,k]=1 (anatomy)."""
    if stream == "pathology":
        return [j for j in range(J) if m[b][j][q] == 1]
    return [k for k in range(K) if m[b][q][k] == 1]


def ref_protocl(m, query, books, idx, valid, stream: str) -> float:
    """Mean over (b, q) with e = 1 of −log softmax over [q·P, q·t_neg (valid slots)]."""
    losses = []
    for b in range(len(m)):
        for q in range(len(query[b])):
            pos = partners(m, b, q, stream)
            if not pos:
                continue
            proto = [sum(books[p][d] for p in pos) / len(pos) for d in range(len(books[0]))]
            scores = [dot(query[b][q], proto)]
            scores += [
                dot(query[b][q], books[i])
                for i, ok in zip(idx[b][q], valid[b][q], strict=True)
                if ok
            ]
            losses.append(neg_log_softmax0(scores))
    return sum(losses) / len(losses) if losses else 0.0


def ref_position(m, query, books, chosen, idx, valid) -> float:
    losses = []
    for b in range(len(m)):
        for k in range(K):
            pos = partners(m, b, k, "pathology")
            if not pos:
                continue
            assert chosen[b][k] in pos
            scores = [dot(query[b][k], books[chosen[b][k]])]
            scores += [
                dot(query[b][k], books[i])
                for i, ok in zip(idx[b][k], valid[b][k], strict=True)
                if ok
            ]
            losses.append(neg_log_softmax0(scores))
    return sum(losses) / len(losses) if losses else 0.0


def ref_icl(m, h_p, h_a) -> float:
    losses = []
    for b in range(len(m)):
        for j in range(J):
            for k in range(K):
                y = m[b][j][k]
                if y < 0:
                    continue
                x = dot(h_p[b][k], h_a[b][j])
                losses.append(max(x, 0.0) - x * y + math.log1p(math.exp(-abs(x))))
    return sum(losses) / len(losses) if losses else 0.0


def ref_clip(image, text, scale: float) -> float:
    n = len(image)
    logits = [[scale * dot(image[i], text[t]) for t in range(n)] for i in range(n)]
    rows = sum(neg_log_softmax0([logits[i][i]] + logits[i][:i] + logits[i][i + 1 :])
               for i in range(n))  # fmt: skip
    cols = [[logits[i][t] for i in range(n)] for t in range(n)]
    cols_loss = sum(neg_log_softmax0([cols[t][t]] + cols[t][:t] + cols[t][t + 1 :])
                    for t in range(n))  # fmt: skip
    return (rows + cols_loss) / (2 * n)


# ---- equality with the references ----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_existence_labels_and_loss_match_the_loop(seed):
    m = random_matrix(seed)
    e_p, e_a = existence_labels(m)
    ref_p, ref_a = ref_labels(m.tolist())
    assert e_p.tolist() == ref_p and e_a.tolist() == ref_a
    assert set(e_p.unique().tolist()) == {-1, 0, 1}
    for labels, q in ((e_p, K), (e_a, J)):
        logits = randn(B, q, 2, seed=seed + 10)
        got = existence_loss(logits, labels)
        assert abs(got.item() - ref_existence(logits.tolist(), labels.tolist())) < TOL


@pytest.mark.parametrize("stream", ["pathology", "anatomy"])
def test_protocl_matches_the_loop(stream):
    m = random_matrix(2)
    positive = (m == 1).transpose(1, 2) if stream == "pathology" else m == 1
    q, p = positive.shape[1:]
    query, books = randn(B, q, D, seed=3), randn(p, D, seed=4)
    idx, valid = sample_negatives(~positive, 7, torch.Generator().manual_seed(5))
    got = protocl_loss(query, positive, books, idx, valid)
    want = ref_protocl(m.tolist(), query.tolist(), books.tolist(), idx.tolist(),
                       valid.tolist(), stream)  # fmt: skip
    assert positive.any(-1).sum() > 10  # the test exercises many positive queries
    assert abs(got.item() - want) < TOL
    got.backward()
    assert torch.isfinite(query.grad).all() and query.grad.abs().sum() > 0


def test_position_loss_matches_the_loop():
    m = random_matrix(6)
    positive = (m == 1).transpose(1, 2)
    query, books = randn(B, K, D, seed=7), randn(J, D, seed=8)
    gen = torch.Generator().manual_seed(9)
    chosen = sample_negatives(positive, 1, gen)[0][..., 0]
    idx, valid = sample_negatives(~positive, 7, gen)
    got = position_loss(query, positive, books, chosen, idx, valid)
    want = ref_position(m.tolist(), query.tolist(), books.tolist(), chosen.tolist(),
                        idx.tolist(), valid.tolist())  # fmt: skip
    assert abs(got.item() - want) < TOL


def test_icl_matches_the_loop():
    m = random_matrix(10, p_pos=0.1, p_zero=0.1)
    h_p, h_a = randn(B, K, 8, seed=11), randn(B, J, 8, seed=12)
    got = icl_loss(h_a @ h_p.transpose(1, 2), m)
    assert abs(got.item() - ref_icl(m.tolist(), h_p.tolist(), h_a.tolist())) < TOL


def test_clip_loss_matches_the_loop():
    image = torch.nn.functional.normalize(randn(6, 5, seed=13), dim=-1)
    text = torch.nn.functional.normalize(randn(6, 5, seed=14), dim=-1)
    scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64)
    got = clip_loss(image, text, scale)
    assert abs(got.item() - ref_clip(image.tolist(), text.tolist(), 1 / 0.07)) < TOL


# ---- edge cases ----------------------------------------------------------------------------


def test_a_batch_without_positives_or_labels_gives_connected_zeros():
    m = random_matrix(15, p_pos=0.0, p_zero=0.05)
    positive = (m == 1).transpose(1, 2)
    query, books = randn(B, K, D, seed=16), randn(J, D, seed=17)
    idx, valid = sample_negatives(~positive, 7, torch.Generator().manual_seed(0))
    proto = protocl_loss(query, positive, books, idx, valid)
    chosen = sample_negatives(positive, 1, torch.Generator().manual_seed(0))[0][..., 0]
    position = position_loss(query, positive, books, chosen, idx, valid)
    unknown = torch.full_like(m, -1)
    logits, h = randn(B, K, 2, seed=18), randn(B, J, K, seed=19)
    exist = existence_loss(logits, existence_labels(unknown)[0])
    icl = icl_loss(h, unknown)
    for loss in (proto, position, exist, icl):
        assert loss.item() == 0.0 and loss.requires_grad
    (proto + position + exist + icl).backward()
    for leaf in (query, logits, h):
        assert leaf.grad is not None and torch.equal(leaf.grad, torch.zeros_like(leaf))


def test_fewer_candidates_than_negatives_masks_the_missing_slots():
    """Entity 0 of item 0 is positive at 48 of 51 landmarks (3 candidates), entity 1 at all 51
    (none): the missing slots are invalid and left out of the softmax, so entity 1 contributes
    −log softmax([s0])_0 = 0 to the mean."""
    m = random_matrix(20)
    m[0, :48, 0] = 1
    m[0, 48:, 0] = torch.tensor([0, -1, 0])
    m[0, :, 1] = 1
    positive = (m == 1).transpose(1, 2)
    idx, valid = sample_negatives(~positive, 7, torch.Generator().manual_seed(21))
    assert valid[0, 0].tolist() == [True] * 3 + [False] * 4
    assert sorted(idx[0, 0, :3].tolist()) == [48, 49, 50]
    assert not valid[0, 1].any()
    query, books = randn(B, K, D, seed=22), randn(J, D, seed=23)
    got = protocl_loss(query, positive, books, idx, valid)
    want = ref_protocl(m.tolist(), query.tolist(), books.tolist(), idx.tolist(),
                       valid.tolist(), "pathology")  # fmt: skip
    assert abs(got.item() - want) < TOL
    single = protocl_loss(query[:1, 1:2], positive[:1, 1:2], books, idx[:1, 1:2], valid[:1, 1:2])
    assert single.item() == 0.0


def test_negatives_are_distinct_non_positive_and_seeded():
    m = random_matrix(30, batch=16, p_pos=0.3, p_zero=0.1)
    candidates = (m != 1).transpose(1, 2)
    idx, valid = sample_negatives(candidates, 7, torch.Generator().manual_seed(31))
    assert idx.shape == valid.shape == (16, K, 7) and idx.dtype == torch.long
    rows = zip(idx.flatten(0, 1).tolist(), valid.flatten(0, 1).tolist(),
               candidates.flatten(0, 1).tolist(), strict=True)  # fmt: skip
    for ids, ok, cand in rows:
        chosen = [i for i, v in zip(ids, ok, strict=True) if v]
        assert len(set(chosen)) == len(chosen) == min(7, sum(cand))
        assert all(cand[i] for i in chosen)
    again = sample_negatives(candidates, 7, torch.Generator().manual_seed(31))
    other = sample_negatives(candidates, 7, torch.Generator().manual_seed(32))
    assert torch.equal(again[0], idx) and torch.equal(again[1], valid)
    assert not torch.equal(other[0], idx)


def test_negatives_are_uniform_over_the_candidates():
    candidates = torch.zeros(4000, 1, 20, dtype=torch.bool)
    candidates[..., :10] = True
    idx, valid = sample_negatives(candidates, 3, torch.Generator().manual_seed(40))
    assert valid.all()
    counts = torch.bincount(idx.flatten(), minlength=20)
    assert counts[10:].sum() == 0
    assert ((counts[:10] - 1200).abs() < 150).all()  # binomial(4000, 0.3): sd ~ 29


def test_more_negatives_than_partners_is_an_error():
    with pytest.raises(MedslipError, match="n_negatives 52"):
        sample_negatives(torch.ones(1, 75, 51, dtype=torch.bool), 52, torch.Generator())


def test_prior_loss_is_the_base_rate_cross_entropy():
    """Query 0: 1 positive of 4 known training labels -> p = 0.25; query 1 is never known in
    training -> p = 0.5. Validation labels (1, 0) on query 0 and 1 on query 1."""
    train = torch.tensor([[1, -1], [0, -1], [0, -1], [0, -1]])
    val = torch.tensor([[1, 1], [0, -1]])
    want = -(math.log(0.25) + math.log(0.75) + math.log(0.5)) / 3
    assert prior_existence_loss(train, val) == pytest.approx(want, rel=1e-9)


def test_a_head_matching_the_prior_scores_the_prior_loss():
    rates = torch.tensor([0.1, 0.7, 0.4])
    gen = torch.Generator().manual_seed(0)
    train = (torch.rand(4000, 3, generator=gen) < rates).long()
    val = (torch.rand(500, 3, generator=gen) < rates).long()
    p = train.float().mean(0)
    logits = torch.stack([(1 - p).log(), p.log()], -1).expand(500, -1, -1)
    assert prior_existence_loss(train, val) == pytest.approx(float(existence_loss(logits, val)))
