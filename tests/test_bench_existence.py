"""``medslip bench existence``: the oracle ceilings of the pretraining existence losses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from medslip.benchmarks.existence import indicators, loss_of, oracle_probabilities
from medslip.model.losses import prior_existence_loss


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
