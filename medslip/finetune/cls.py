"""Fine-tuning classification (the official `Sample_Finetuning_SIIMACR/I1_classification/`),
``medslip finetune cls``.

Model (official ``use_base=True``): a full ResNet with torchvision names: the pretrained trunk
(conv1 ... layer3, ``res_features.X -> X``) + a new ``layer4`` (``trunk_layers[0]`` bottlenecks
of width 8·w, stride 2, as every torchvision bottleneck ResNet: 3 for ResNet-50) + global
average pooling + a new ``fc`` Linear(32·w -> classes). ``use_base=False`` is the official
stream-transfer alternative: trunk tokens -> pretrained mask generator (x_p = G ⊙ x, as in
training; skipped for variants without one) -> pretrained pathology L1/ReLU/L2 -> a new
Linear(d_model -> 16·w) ``back`` -> layer4 -> pooling -> fc.

Loss BCE-with-logits over the known labels (uncertain/unmentioned are left out); AdamW at a
constant lr; selection and early stopping on the validation macro AUC (mean over the classes
with both labels in val; the validation BCE when no class has both); test AUC, and F1/accuracy
at the max-F1 threshold chosen on val, with patient-bootstrap intervals (the zero-shot metric
code, :func:`medslip.evaluate.zeroshot.class_metrics`). Labels: the manifest's, except SIIM-ACR
where an image is positive when its shard mask is non-empty (official ``sum(mask) > 0``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medslip.data.dataset import PretrainAugment, eval_transform
from medslip.data.manifest import read_manifest
from medslip.data.shards import ShardReader
from medslip.errors import MedslipError
from medslip.evaluate.report import write_outputs
from medslip.evaluate.scores import auc
from medslip.evaluate.zeroshot import class_metrics
from medslip.finetune.common import (
    TRUNK_PREFIX,
    ImageDataset,
    SplitFrame,
    batches,
    fit,
    head_of,
    load_split_frame,
    read_weights,
    run_model_settings,
    split_counts,
    stream_seed,
    transfer,
)
from medslip.model.trunk import EXPANSION, Bottleneck, ResNetTrunk
from medslip.pretrain.schedule import adamw
from medslip.settings import EvalSettings, FinetuneSettings
from medslip.variants import variant

log = logging.getLogger(__name__)
TASK = "finetune_cls"
MASK_LABELS = {"siim_acr"}
"""Datasets whose single class is labelled from the shard mask (non-empty = positive)."""
PREDICTION_COLUMNS = ["image_id", "patient_id", "split", "class", "label", "score"]
STREAM_KEYS = {
    "medklip": {"res_l1.": "res_l1_pathology.", "res_l2.": "res_l2_pathology."},
    "medslip": {
        "mask_generator.": "mask_generator.",
        "res_l1_pathology.": "res_l1_pathology.",
        "res_l2_pathology.": "res_l2_pathology.",
    },
}
"""use_base=False: pretrained stream layers (file prefix -> model prefix) by model family (the
registry's ``Variant.family``; global CLIP has no stream)."""


class ResNetClassifier(ResNetTrunk):
    """The fine-tuning classifier (see module docstring); (B, 3, H, W) -> logits (B, classes).

    ``stream``: None (``use_base=True``) or ``{"d_model": d, "mask_generator": bool}``.
    """

    def __init__(
        self,
        layers: Sequence[int],
        width: int,
        n_classes: int,
        stream: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(layers, width)
        c, planes = self.out_channels, width * 8
        stage = [Bottleneck(c, planes, 2)]
        stage += [Bottleneck(planes * EXPANSION, planes, 1) for _ in range(layers[0] - 1)]
        self.layer4 = nn.Sequential(*stage)
        for module in self.layer4.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes * EXPANSION, n_classes)
        self.use_base = stream is None
        if stream is not None:
            d = stream["d_model"]
            self.mask_generator = nn.Linear(c, c) if stream["mask_generator"] else None
            self.res_l1_pathology = nn.Linear(c, c)
            self.res_l2_pathology = nn.Linear(c, d)
            self.back = nn.Linear(d, c)

    def forward(self, images: Tensor) -> Tensor:
        x = super().forward(images)
        if not self.use_base:
            tokens = x.flatten(2).transpose(1, 2)
            if self.mask_generator is not None:
                tokens = self.mask_generator(tokens) * tokens
            tokens = self.back(self.res_l2_pathology(F.relu(self.res_l1_pathology(tokens))))
            x = tokens.transpose(1, 2).reshape(x.shape)
        return self.fc(self.avgpool(self.layer4(x)).flatten(1))


def build_classifier(
    meta: dict[str, Any],
    state: dict[str, Tensor],
    n_classes: int,
    use_base: bool,
    path: str,
) -> tuple[ResNetClassifier, dict[str, Any]]:
    """The classifier for a pretrained run (its model.json and weights), with the transfer
    report. Initialise torch's RNG first (layer4, fc and ``back`` are new)."""
    model_cfg = meta["model"]
    layers, width = tuple(model_cfg["trunk_layers"]), int(model_cfg["trunk_width"])
    mapping = {TRUNK_PREFIX: ""}
    stream = None
    if not use_base:
        if not any(k.startswith(("res_l1", "res_l1_pathology")) for k in state):
            raise MedslipError(
                f"{path}: variant {meta['variant']} has no pathology stream; the stream-transfer "
                "alternative (finetune.use_base: false) needs one"
            )
        stream = {
            "d_model": model_cfg["d_model"],
            "mask_generator": "mask_generator.weight" in state,
        }
        mapping |= STREAM_KEYS[variant(meta["variant"]).family]
    model = ResNetClassifier(layers, width, n_classes, stream)
    targets = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.")
    if stream is not None:
        targets += ("res_l1_pathology.", "res_l2_pathology.")
        targets += ("mask_generator.",) if stream["mask_generator"] else ()
    report = transfer(model, state, mapping, path, targets)
    if stream is not None and any(k.startswith(targets[5:]) for k in report.missing):
        raise MedslipError(f"{path}: pretrained stream layers missing: {report.missing}")
    return model, report.to_dict()


def class_labels(data_dir: Path, dataset: str, split: SplitFrame, classes: list[str]) -> np.ndarray:
    """Float (N, C) in {1, 0, NaN} for the rows of ``split.frame`` (see module docstring)."""
    keys = split.frame["image_id"].tolist()
    if dataset in MASK_LABELS:
        if len(classes) != 1:
            raise MedslipError(f"finetune.classes.{dataset}: one class (labelled from the mask)")
        reader = ShardReader(split.shards)
        masks = (reader.mask(k) for k in keys)
        return np.array([[float(m is not None and bool(m.any()))] for m in masks]).reshape(-1, 1)
    manifest = read_manifest(data_dir / "manifest.parquet", ["image_id", "labels"])
    decoded = manifest.set_index("image_id").loc[keys, "labels"].map(json.loads)
    names = set().union(*(d.keys() for d in decoded)) if len(decoded) else set()
    absent = sorted(set(classes) - names)
    if absent:
        raise MedslipError(
            f"finetune.classes.{dataset}: {absent} are not labels of the dataset "
            f"(its labels: {sorted(names)})"
        )
    value = lambda v: v if v in (0.0, 1.0) else float("nan")  # noqa: E731
    return np.array([[value(d.get(c)) for c in classes] for d in decoded], dtype=float).reshape(
        len(keys), len(classes)
    )


def masked_bce(logits: Tensor, labels: Tensor) -> Tensor | None:
    """Mean BCE-with-logits over the known (non-NaN) labels; None when none is known."""
    known = ~torch.isnan(labels)
    if not known.any():
        return None
    return F.binary_cross_entropy_with_logits(logits[known], labels[known])


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUC over the classes with both labels among the known ones; NaN when none."""
    values = []
    for c in range(labels.shape[1]):
        known = ~np.isnan(labels[:, c])
        values.append(auc(labels[known, c], scores[known, c]))
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


@torch.no_grad()
def predict(
    model: nn.Module, dataset: ImageDataset, size: int, settings: FinetuneSettings, device
) -> np.ndarray:
    """Sigmoid scores (N, C) of every image of ``dataset``, in order (eval transform)."""
    model.eval()
    chunks = []
    for batch in batches(dataset, settings.batch_size, settings.workers, None, "predict"):
        images = eval_transform(batch["image"].to(device), size)
        chunks.append(model(images).float().sigmoid().cpu())
    return torch.cat(chunks).numpy().astype(float)


def run_finetune_cls(
    config: dict[str, Any],
    run_dir: Path,
    data_dir: Path,
    dataset: str,
    fraction: float,
    ft_seed: int,
    out_dir: Path,
    device: torch.device,
) -> dict[str, Any]:
    """Fine-tune the trunk of ``run_dir`` on ``dataset`` at training ``fraction`` with seed
    ``ft_seed``; writes predictions + metrics under ``out_dir`` and returns the metrics."""
    settings = FinetuneSettings.from_config(config, dataset)
    meta, _, _ = run_model_settings(run_dir)
    size = settings.image_size or int(meta["model"]["image_size"])
    if dataset not in settings.classes:
        raise MedslipError(f"{dataset}: no classes; set finetune.classes.{dataset}")
    classes = list(settings.classes[dataset])
    split = load_split_frame(data_dir, fraction)
    labels = class_labels(data_dir, dataset, split, classes)
    state = read_weights(run_dir)
    seed = lambda name: stream_seed(settings, ft_seed, TASK, dataset, fraction, name)  # noqa: E731
    torch.manual_seed(seed("init"))
    model, report = build_classifier(meta, state, len(classes), settings.use_base, str(run_dir))
    model.to(device)
    optimizer = adamw(model, settings.lr, settings.weight_decay)
    augment = PretrainAugment(size=size, scale=settings.crop_scale) if settings.augment else None
    augment_gen = torch.Generator().manual_seed(seed("augment"))
    torch.manual_seed(seed("dropout"))
    rows = {s: split.rows(s) for s in ("train", "val", "test")}
    data = {s: ImageDataset(split.shards, split.keys(s)) for s in rows}
    train_labels = torch.from_numpy(labels[rows["train"]]).float()
    val_labels = labels[rows["val"]]
    criterion, notes = selection_criterion(val_labels)
    n_train_pos = np.nansum(labels[rows["train"]], axis=0)
    notes += [
        f"{c}: no positive in the training subset"
        for c, n in zip(classes, n_train_pos, strict=True)
        if not n
    ]

    def train_epoch(epoch: int) -> float:
        model.train()
        total, count = 0.0, 0
        for batch in batches(
            data["train"],
            settings.batch_size,
            settings.workers,
            seed(f"order:{epoch}"),
            f"epoch {epoch}",
        ):
            images = batch["image"].to(device)
            x = augment(images, augment_gen) if augment else eval_transform(images, size)
            loss = masked_bce(model(x), train_labels[batch["index"]].to(device))
            if loss is None:
                continue
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(images), count + len(images)
        return total / max(count, 1)

    def validate() -> dict[str, float]:
        scores = predict(model, data["val"], size, settings, device)
        bce = masked_bce(
            torch.logit(torch.from_numpy(scores).clamp(1e-7, 1 - 1e-7)),
            torch.from_numpy(val_labels),
        )
        loss = float(bce) if bce is not None else float("nan")
        return {"val_auc": macro_auc(val_labels, scores), "val_loss": loss, "val_neg_loss": -loss}

    result = fit(model, settings.epochs, settings.patience, train_epoch, validate, criterion)
    scores = np.zeros_like(labels)
    for s in ("val", "test"):
        scores[rows[s]] = predict(model, data[s], size, settings, device)
    evaluated = np.concatenate([rows["val"], rows["test"]])
    predictions = predictions_frame(
        split.frame.iloc[evaluated], classes, labels[evaluated], scores[evaluated]
    )
    per_class, macro, class_notes = class_metrics(
        predictions.assign(entity=predictions["class"]), classes, _bootstrap_settings(settings)
    )
    if any(split.missing.values()):
        notes.append(f"images missing from the shards (quarantined): {split.missing}")
    metrics = head_of(TASK, dataset, meta, fraction, ft_seed, settings, size) | {
        "status": "ok",
        "use_base": settings.use_base,
        "protocol": protocol(settings, dataset, criterion),
        "images": split_counts(split.frame, split.missing),
        "train_positives": {c: int(n_train_pos[i]) for i, c in enumerate(classes)},
        "transfer": report,
        "selection": criterion,
        "chosen_epoch": result.best_epoch,
        "chosen_val_score": result.best_score,
        "epochs_run": len(result.curve),
        "stopped_early": result.stopped_early,
        "curve": result.curve,
        "classes": per_class,
        "macro": macro,
        "notes": notes + class_notes,
    }
    write_outputs(out_dir, predictions, metrics)
    return metrics


def selection_criterion(val_labels: np.ndarray) -> tuple[str, list[str]]:
    """The validation score that picks the epoch, from the val labels (N, C) in {1, 0, NaN}:
    macro AUC where some class has both labels, else the negated BCE (with a note)."""
    val_has_both = any({0.0, 1.0} <= set(column[~np.isnan(column)]) for column in val_labels.T)
    if val_has_both:
        return "val_auc", []
    return "val_neg_loss", ["no class has both labels in val: selection on the validation BCE"]


def _bootstrap_settings(settings: FinetuneSettings) -> EvalSettings:
    """The evaluation settings :func:`class_metrics` reads (the bootstrap of ``evaluate``)."""
    return EvalSettings(
        bootstrap=settings.bootstrap,
        seed=settings.bootstrap_seed,
        batch_size=settings.batch_size,
        workers=settings.workers,
        entity_maps={},
        grounding={},
    )


def protocol(settings: FinetuneSettings, dataset: str, criterion: str) -> dict[str, Any]:
    """The ``protocol`` block of a fine-tuning classification run's metrics.json."""
    return {
        "model": "pretrained trunk + new layer4 + avgpool + new fc"
        if settings.use_base
        else "trunk -> pretrained mask generator and pathology L1/ReLU/L2 -> new back -> "
        "new layer4 + avgpool + new fc (stream transfer)",
        "loss": "BCE with logits over the known labels",
        "selection": f"best validation {criterion} (ties keep the earlier epoch); "
        "early stopping after `patience` epochs without improvement; test never seen",
        "threshold": "max-F1 on val at the chosen epoch (score >= threshold is positive)",
        "oracle": "max-F1 threshold chosen on test (the paper protocol)",
        "bootstrap": {
            "unit": "patient",
            "resamples": settings.bootstrap,
            "seed": settings.bootstrap_seed,
            "level": 0.95,
        },
        "labels": "shard mask non-empty" if dataset in MASK_LABELS else "manifest labels",
    }


def predictions_frame(
    frame: pd.DataFrame, classes: list[str], labels: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    """Long table: one row per (val/test image, class): label (1/0/NaN) and sigmoid score."""
    n, c = labels.shape
    out = frame.iloc[np.repeat(np.arange(n), c)].reset_index(drop=True)
    out["class"] = np.tile(classes, n)
    out["label"] = labels.reshape(-1)
    out["score"] = scores.reshape(-1)
    return out[PREDICTION_COLUMNS]
