"""``medslip bench existence``: the floor and two ceilings of the pretraining existence losses.

Per stream (pathology: 75 entity queries; anatomy: 51 landmark queries), the validation
existence loss, scored like the model's (:func:`~medslip.model.losses.existence_loss` on the
labels the pretraining loop builds: the join, the preset's ``uncertain`` policy and
``exclude_class``) of:

- ``prior``: each label's training base rate, the image-blind floor of the pretraining curves;
- ``kinds_oracle``: per label, an L2 logistic regression on which finding kinds SynthCXR drew in
  the image, fitted on the training split (labels without both classes in training keep the
  base rate);
- ``sites_oracle``: the same on the drawn kinds and the landmarks that host a drawn finding.

An oracle reads from the ground truth what a model must read from pixels, so it shows how much
of a stream's labels the images can explain; it is not a strict bound (a model may also pick
up what the report's wording correlates with). Reads the default run's products (``--results``)
and SynthCXR's MIMIC ground truth; writes ``results/benchmarks/existence_oracle.csv`` (stream,
control, val_loss, below_prior) and prints it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from medslip.atomic import atomic_path
from medslip.config import load_config
from medslip.errors import MedslipError
from medslip.model.losses import existence_loss, prior_existence_loss, stream_existence_labels
from medslip.pretrain.join import load_tables
from medslip.settings import TrainSettings
from medslip.vocab import LANDMARKS

C = 1.0
"""Inverse L2 strength of every oracle regression."""


def indicators(image_ids: pd.Series, findings: pd.DataFrame, column: str) -> np.ndarray:
    """0/1 float (N, K): which values of ``findings[column]`` each image has, K the sorted
    distinct values over all findings."""
    values = sorted(findings[column].unique())
    index = {v: k for k, v in enumerate(values)}
    row = {image_id: i for i, image_id in enumerate(image_ids)}
    out = np.zeros((len(image_ids), len(values)))
    for image_id, value in zip(findings["image_id"], findings[column], strict=True):
        if image_id in row:
            out[row[image_id], index[value]] = 1.0
    return out


def oracle_probabilities(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray) -> np.ndarray:
    """P(present) (M, Q) of one logistic regression per label column of ``y_train`` (N, Q) in
    {-1, 0, 1} (-1 ignored) on features ``x_train`` (N, F), for ``x_val`` (M, F); a column
    without both classes in training keeps its base rate (0.5 without any label)."""
    out = np.empty((len(x_val), y_train.shape[1]))
    for q in range(y_train.shape[1]):
        known = y_train[:, q] >= 0
        labels = y_train[known, q]
        if len(np.unique(labels)) < 2:
            out[:, q] = labels.mean() if len(labels) else 0.5
            continue
        fit = LogisticRegression(C=C, max_iter=2000).fit(x_train[known], labels)
        out[:, q] = fit.predict_proba(x_val)[:, 1]
    return out


def loss_of(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Existence loss of P(present) (M, Q) against labels (M, Q) in {-1, 0, 1}."""
    p = torch.from_numpy(probabilities).clamp(1e-6, 1 - 1e-6)
    logits = torch.stack([(1 - p).log(), p.log()], dim=-1)
    return float(existence_loss(logits, torch.from_numpy(labels).long()))


def existence_controls(results: Path, config: dict) -> pd.DataFrame:
    """The table: one row per (stream, control) with the validation loss and its share below
    the prior."""
    train_settings = TrainSettings.from_config(config)
    tables = load_tables(
        results / "models" / "pretrain_data",
        results / "reports" / "mimic_cxr",
        train_settings.uncertain,
    )
    truth = results / "synthcxr" / "ground_truth" / "mimic_cxr_jpg" / "findings.parquet"
    try:
        findings = pd.read_parquet(truth, columns=["image_id", "kind", "landmark"])
    except (OSError, ValueError) as exc:
        raise MedslipError(f"{truth}: cannot read the SynthCXR findings ({exc})") from None
    findings = findings[findings["landmark"].isin(LANDMARKS)]
    parts = {}
    for split in ("train", "val"):
        images = tables.images[tables.images["split"] == split]
        kinds = indicators(images["image_id"], findings, "kind")
        sites = indicators(images["image_id"], findings, "landmark")
        matrix = torch.from_numpy(tables.matrices[images["row"].to_numpy()])
        labels = {
            k: v.numpy()
            for k, v in stream_existence_labels(matrix, train_settings.exclude_class).items()
        }
        parts[split] = {"kinds": kinds, "sites": np.hstack([kinds, sites]), "labels": labels}
    rows = []
    for stream in ("pathology", "anatomy"):
        train, val = parts["train"]["labels"][stream], parts["val"]["labels"][stream]
        prior = prior_existence_loss(torch.from_numpy(train), torch.from_numpy(val))
        rows.append({"stream": stream, "control": "prior", "val_loss": prior})
        for name in ("kinds", "sites"):
            p = oracle_probabilities(parts["train"][name], train, parts["val"][name])
            rows.append(
                {"stream": stream, "control": f"{name}_oracle", "val_loss": loss_of(p, val)}
            )
    frame = pd.DataFrame(rows)
    prior_of = frame[frame["control"] == "prior"].set_index("stream")["val_loss"]
    frame["below_prior"] = 1 - frame["val_loss"] / frame["stream"].map(prior_of)
    return frame


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medslip bench existence", description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--results", default="results", help="the default run's results dir")
    parser.add_argument("--out", default="results/benchmarks/existence_oracle.csv")
    args = parser.parse_args(argv)
    frame = existence_controls(Path(args.results), load_config(args.config))
    out = Path(args.out)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    print(frame.round(4).to_string(index=False))
    return 0
