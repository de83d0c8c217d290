"""``medslip bench existence``: the floor, oracle ceilings and a trained model on the pretraining
existence losses, per stream and per label."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from medslip.benchmarks.existence import (
    existence_controls,
    indicators,
    label_losses,
    loss_of,
    oracle_probabilities,
)
from medslip.config import load_config
from medslip.model.losses import prior_existence_loss, prior_rates
from medslip.vocab import ENTITIES, LANDMARKS


def test_the_existence_oracle_reads_labels_from_the_drawn_kinds():
    """``medslip bench existence``: a label that follows a drawn kind is predicted from it far
    below the base rate's loss; a label without both classes in training keeps its base rate."""
    rng = np.random.default_rng(0)
    ids = pd.Series([f"i{n}" for n in range(400)])
    drawn = rng.random(400) < 0.3
    findings = pd.DataFrame({"image_id": ids[drawn], "kind": "mass"})
    x = indicators(ids, findings, "kind")
    assert x.shape == (400, 1) and x[:, 0].tolist() == drawn.astype(float).tolist()
    flip = rng.random(400) < 0.05
    y = np.stack([(drawn ^ flip).astype(int), np.ones(400, int), np.full(400, -1)], axis=1)
    p = oracle_probabilities(x[:300], y[:300], x[300:])
    oracle = loss_of(p[:, :1], y[300:, :1])
    prior = prior_existence_loss(torch.from_numpy(y[:300, :1]), torch.from_numpy(y[300:, :1]))
    assert oracle < 0.5 * prior
    assert np.allclose(p[:, 1], 1.0) and np.allclose(p[:, 2], 0.5)


def test_label_parts_add_up_to_the_loss():
    """The per-label table's parts: each label's summed cross-entropy over all known cells, so
    they add up to the stream's loss; a label known only as positive costs the prior nothing."""
    rng = np.random.default_rng(1)
    y = rng.integers(-1, 2, size=(50, 4))
    y[:, 3] = np.where(y[:, 3] >= 0, 1, -1)
    p = rng.uniform(0.05, 0.95, size=(50, 4))
    parts = label_losses(p, y)
    assert parts.sum() == pytest.approx(loss_of(p, y), rel=1e-9)
    prior = np.tile(prior_rates(torch.from_numpy(y)).numpy(), (50, 1))
    assert label_losses(prior, y)[3] < 1e-5 < label_losses(prior, y)[:3].min()


@pytest.mark.e2e
def test_bench_existence_scores_a_trained_run_beside_prior_and_oracles(e2e_workdir):
    """``medslip bench existence --run``: the run's model is a control of both its streams,
    and every control's per-label parts add up to its row of the table."""
    results = e2e_workdir / "results"
    config = load_config(e2e_workdir / ".test" / "config.yaml")
    frame, labels = existence_controls(results, config, results / "models/medslip/seed0")
    controls = ["prior", "kinds_oracle", "sites_oracle", "model"]
    assert frame.groupby("stream")["control"].apply(list).to_dict() == {
        "anatomy": controls,
        "pathology": controls,
    }
    for row in frame.itertuples():
        part = labels.loc[labels["stream"] == row.stream, row.control].sum()
        assert part == pytest.approx(row.val_loss, rel=1e-6), row
    assert set(labels["label"]) <= set(ENTITIES) | set(LANDMARKS)
    assert (labels["val_labelled"] > 0).all()
