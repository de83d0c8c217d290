"""``medslip bench existence``: the floor and two ceilings of the pretraining existence losses.

Per stream (pathology: 75 entity queries; anatomy: 51 landmark queries), the validation
existence loss, scored like the model's (:func:`~medslip.model.losses.existence_loss` on the
labels the pretraining loop builds: the join, the preset's ``uncertain`` policy and
``exclude_class``) of:

- ``prior``: each label's training base rate, the image-blind floor of the pretraining curves;
- ``kinds_oracle``: per label, an L2 logistic regression on which finding kinds SynthCXR drew in
  the image, fitted on the training split (labels without both classes in training keep the
  base rate);
- ``sites_oracle``: the same on the drawn kinds and the landmarks that host a drawn finding;
- ``model`` (with ``--run``): a trained run's model on the validation images, with the training
  books and the evaluation transform, aggregated over all labels like the prior (the pretraining
  curves average per-batch means instead).

An oracle reads from the ground truth what a model must read from pixels, so it shows how much
of a stream's labels the images can explain; it is not a strict bound (a model may also pick
up what the report's wording correlates with). Reads the default run's products (``--results``)
and SynthCXR's MIMIC ground truth; writes ``results/benchmarks/existence_oracle.csv`` (stream,
control, val_loss, below_prior) and, beside it, ``existence_oracle_labels.csv``: per stream and
label (entity or landmark) its labelled and positive validation cells and each control's part of
the stream's loss (the parts add up to the loss), which shows which labels a ceiling's gain
comes from and how much of it the model takes. Prints both.
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
from medslip.data.dataset import eval_transform
from medslip.errors import MedslipError
from medslip.model.losses import existence_loss, prior_rates, stream_existence_labels
from medslip.model.text_books import load_books
from medslip.pretrain.checkpoint import load_pretrained, read_run_meta
from medslip.pretrain.join import PretrainDataset, load_tables
from medslip.settings import TrainSettings
from medslip.vocab import ENTITIES, LANDMARKS

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


def label_losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each label's part (Q,) of :func:`loss_of`: its own loss weighted by its share of the
    known cells, so the parts add up to the loss."""
    known = (labels >= 0).sum(axis=0)
    return np.array(
        [
            loss_of(probabilities[:, [q]], labels[:, [q]]) * known[q] / max(known.sum(), 1)
            for q in range(labels.shape[1])
        ]
    )


def run_probabilities(
    run_dir: Path, books: Path, dataset: PretrainDataset
) -> dict[str, np.ndarray]:
    """P(present) of each stream of a trained run's model ({"pathology": (M, 75), "anatomy":
    (M, 51)}; the streams it has) on ``dataset``'s images, with the training books and the
    evaluation transform, as the pretraining loop's validation runs it."""
    model = load_pretrained(run_dir, books)
    trained = load_books(books)
    model.set_books(trained.pathology, trained.anatomy)
    heads = {"pathology": "logits_p", "anatomy": "logits_a"}
    size = read_run_meta(run_dir)["model"]["image_size"]
    out: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, len(dataset), 64):
            rows = range(start, min(start + 64, len(dataset)))
            images = torch.stack([dataset[i]["image"] for i in rows])
            result = model(eval_transform(images, size))
            for stream, head in heads.items():
                logits = getattr(result, head)
                if logits is not None:
                    out.setdefault(stream, []).append(logits.softmax(-1)[..., 1].numpy())
    if not out:
        raise MedslipError(f"{run_dir}: the model has no existence heads")
    return {stream: np.concatenate(parts) for stream, parts in out.items()}


def existence_controls(
    results: Path, config: dict, run: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the table: one row per stream and control, with the validation loss and its share below
    the prior; the per-label table: one row per stream and label, with its validation cells,
    positives and each control's part of the stream's loss). ``run``: a trained run whose
    model is scored as the control ``model``."""
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
    model = {}
    if run is not None:
        val = PretrainDataset(results / "data" / "mimic_cxr_jpg" / "shards", tables, "val")
        model = run_probabilities(run, results / "models" / "text_books.safetensors", val)
    rows, per_label = [], []
    for stream, names in (("pathology", ENTITIES), ("anatomy", LANDMARKS)):
        train, val = parts["train"]["labels"][stream], parts["val"]["labels"][stream]
        controls = {"prior": np.tile(prior_rates(torch.from_numpy(train)).numpy(), (len(val), 1))}
        for name in ("kinds", "sites"):
            controls[f"{name}_oracle"] = oracle_probabilities(
                parts["train"][name], train, parts["val"][name]
            )
        if stream in model:
            controls["model"] = model[stream]
        labels = pd.DataFrame(
            {
                "stream": stream,
                "label": names,
                "val_labelled": (val >= 0).sum(axis=0),
                "val_positive": (val == 1).sum(axis=0),
            }
        )
        for name, p in controls.items():
            rows.append({"stream": stream, "control": name, "val_loss": loss_of(p, val)})
            labels[name] = label_losses(p, val)
        per_label.append(labels[labels["val_labelled"] > 0])
    frame = pd.DataFrame(rows)
    prior_of = frame[frame["control"] == "prior"].set_index("stream")["val_loss"]
    frame["below_prior"] = 1 - frame["val_loss"] / frame["stream"].map(prior_of)
    return frame, pd.concat(per_label, ignore_index=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medslip bench existence", description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--results", default="results", help="the default run's results dir")
    parser.add_argument(
        "--run", help="also score this trained run's model (e.g. results/models/medslip/seed0)"
    )
    parser.add_argument("--out", default="results/benchmarks/existence_oracle.csv")
    args = parser.parse_args(argv)
    run = None if args.run is None else Path(args.run)
    frame, per_label = existence_controls(Path(args.results), load_config(args.config), run)
    out = Path(args.out)
    for table, path in ((frame, out), (per_label, labels_path(out))):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    print(frame.round(4).to_string(index=False))
    gain = per_label.assign(oracle_gain=per_label["prior"] - per_label["kinds_oracle"])
    for stream, part in gain.groupby("stream", sort=False):
        print(f"\n{stream}: the labels the kinds oracle gains most on (parts of the loss)")
        top = part.sort_values("oracle_gain", ascending=False).head(10)
        print(top.drop(columns="stream").round(4).to_string(index=False))
    return 0


def labels_path(out: Path) -> Path:
    """The per-label table written beside ``out``: ``<stem>_labels.csv``."""
    return out.with_name(f"{out.stem}_labels.csv")
