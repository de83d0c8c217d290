"""Fine-tuning segmentation (the official `Sample_Finetuning_SIIMACR/I2_segmentation/`), ``medslip
finetune seg``.

:class:`~medslip.finetune.unet.ResUNet` with the pretrained trunk as its encoder
(``res_features.X -> encoder.X``); loss BCE-with-logits + soft Dice (per image,
(2·Σpt + 1) / (Σp + Σt + 1), averaged), at the model input size against the area-resized truth;
AdamW at a constant lr; horizontal flips of image and mask when ``augment``. Selection and
early stopping on the validation mean Dice.

Ground truth, at the shard resolution: SIIM-ACR the shard masks (no mask = empty truth); RSNA
the union of its boxes from ``shards/index.parquet`` (output pixels; a pixel is inside when it
touches the box; negatives empty); the COVID-19 collection its lung masks, and only images with
a mask are used (counted in the metrics). Logits are upsampled bilinearly to the shard
resolution and thresholded at ``seg_threshold`` on the sigmoid.

Per image: Dice = 2|P∩G| / (|P| + |G|) and IoU = |P∩G| / |P∪G|, with the **official empty-mask
convention**: an empty truth scores 1 when the prediction is empty too, else 0. Means over
every test image (none dropped: evaluation batches keep the last partial batch) and over the
images with a non-empty truth, with 95 % patient-bootstrap intervals.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medslip.data.dataset import eval_transform
from medslip.data.shards import GATHERED, ShardReader
from medslip.errors import MedslipError
from medslip.evaluate.report import write_outputs
from medslip.evaluate.scores import (
    bootstrap_counts,
    interval,
    mask_overlap,
    patient_codes,
    weighted_means,
)
from medslip.evaluate.truth import box_mask
from medslip.finetune.common import (
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
    transfer_trunk,
)
from medslip.finetune.unet import ResUNet
from medslip.pretrain.schedule import adamw
from medslip.settings import FinetuneSettings

log = logging.getLogger(__name__)
TASK = "finetune_seg"
MASK_SOURCES = {"siim_acr": "shard", "rsna_pneumonia": "boxes", "covid_chestxray": "shard_only"}
"""Where each dataset's truth comes from: ``shard`` masks (missing = empty), ``boxes`` of the
index, ``shard_only`` (images without a mask are left out)."""
PREDICTION_COLUMNS = [
    "image_id",
    "patient_id",
    "split",
    "truth_pixels",
    "pred_pixels",
    "intersection",
    "dice",
    "iou",
]


class MaskSource:
    """Picklable ``(key, reader, shape) -> uint8 (H, W)`` truth of a dataset (module docstring)."""

    def __init__(self, kind: str, boxes: dict[str, list] | None = None) -> None:
        self.kind = kind
        self.boxes = boxes or {}

    def __call__(self, key: str, reader: ShardReader, shape: tuple[int, int]) -> np.ndarray:
        if self.kind == "boxes":
            return box_mask(self.boxes.get(key, []), shape).astype(np.uint8)
        mask = reader.mask(key)
        return np.zeros(shape, np.uint8) if mask is None else (mask > 0).astype(np.uint8)


def mask_source(dataset: str, split: SplitFrame) -> tuple[MaskSource, SplitFrame, int]:
    """The dataset's :class:`MaskSource` and its split frame (restricted to images with a mask
    for ``shard_only`` datasets; the count left out is returned)."""
    if dataset not in MASK_SOURCES:
        raise MedslipError(
            f"{dataset}: no segmentation truth (supported: {', '.join(sorted(MASK_SOURCES))})"
        )
    kind = MASK_SOURCES[dataset]
    index = pd.read_parquet(
        split.shards / GATHERED["index"], columns=["image_id", "boxes", "has_mask"]
    ).set_index("image_id")
    if kind == "boxes":
        boxes = {
            k: [b[1:] for b in json.loads(text)]
            for k, text in index.loc[split.frame["image_id"], "boxes"].items()
        }
        return MaskSource(kind, boxes), split, 0
    if kind == "shard_only":
        has = index.loc[split.frame["image_id"], "has_mask"].to_numpy(dtype=bool)
        frame = split.frame[has].reset_index(drop=True)
        for name in ("train", "val", "test"):
            if not (frame["split"] == name).any():
                raise MedslipError(f"{dataset}: no {name} image with a mask")
        return (
            MaskSource("shard"),
            SplitFrame(frame, split.shards, split.missing),
            int((~has).sum()),
        )
    return MaskSource("shard"), split, 0


def seg_loss(logits: Tensor, target: Tensor) -> Tensor:
    """BCE-with-logits + (1 − soft Dice per image, averaged); logits, target (B, 1, H, W)."""
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = logits.sigmoid().flatten(1)
    flat = target.flatten(1)
    dice = (2 * (prob * flat).sum(1) + 1) / (prob.sum(1) + flat.sum(1) + 1)
    return bce + (1 - dice).mean()


@torch.no_grad()
def predict_overlap(
    model: nn.Module,
    dataset: ImageDataset,
    size: int,
    settings: FinetuneSettings,
    device: torch.device,
) -> dict[str, np.ndarray]:
    """Per image of ``dataset`` (in order) at the shard resolution: pixel counts |P|, |G|,
    |P∩G| and Dice, IoU (module docstring conventions)."""
    model.eval()
    out: dict[str, list] = {"pred": [], "truth": [], "inter": [], "dice": [], "iou": []}
    for batch in batches(dataset, settings.batch_size, settings.workers, None, "predict"):
        images = batch["image"].to(device)
        logits = model(eval_transform(images, size)).float()
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        pred = (logits.sigmoid() >= settings.seg_threshold)[:, 0].cpu()
        truth = batch["mask"][:, 0] > 0
        scores = mask_overlap(pred, truth)
        out["pred"].append(pred.flatten(1).sum(1))
        out["truth"].append(truth.flatten(1).sum(1))
        out["inter"].append((pred & truth).flatten(1).sum(1))
        out["dice"].append(scores["dice"])
        out["iou"].append(scores["iou"])
    return {k: torch.cat(v).numpy() for k, v in out.items()}


UNDEFINED = "Dice and IoU undefined (n/a): no image has a non-empty truth"


def overlap_summary(
    frame: pd.DataFrame, values: dict[str, np.ndarray], settings: FinetuneSettings
) -> dict[str, Any]:
    """Means of Dice and IoU over all images and over those with a non-empty truth, with
    patient-bootstrap intervals (``frame``: the test rows, patient_id). Without an image whose
    truth is not empty every mean is undefined (NaN, and ``undefined`` says why): the empty
    convention alone would score a model that never predicts anything 1.000."""
    patients = frame["patient_id"].to_numpy()
    counts = bootstrap_counts(patients, settings.bootstrap, settings.bootstrap_seed)
    weights = counts[:, patient_codes(patients)].astype(float) if len(patients) else counts
    positive = values["truth"] > 0
    out: dict[str, Any] = {
        "n_images": int(len(patients)),
        "n_nonempty_truth": int(positive.sum()),
        "n_empty_truth": int((~positive).sum()),
    }
    if not positive.any():
        out["undefined"] = UNDEFINED
    for metric in ("dice", "iou"):
        for suffix, keep in (("", np.full_like(positive, positive.any())), ("_nonempty", positive)):
            v = np.where(keep, values[metric], np.nan)
            finite = v[np.isfinite(v)]
            out[f"{metric}{suffix}"] = float(finite.mean()) if len(finite) else float("nan")
            draws = weighted_means(v, weights) if len(v) else np.full(settings.bootstrap, np.nan)
            out[f"{metric}{suffix}_ci"] = list(interval(draws))
    return out


def run_finetune_seg(
    config: dict[str, Any],
    run_dir: Path,
    data_dir: Path,
    dataset: str,
    fraction: float,
    ft_seed: int,
    out_dir: Path,
    device: torch.device,
) -> dict[str, Any]:
    """Fine-tune a U-Net on the trunk of ``run_dir`` for ``dataset`` at training ``fraction``
    with seed ``ft_seed``; writes predictions + metrics under ``out_dir``; returns the metrics."""
    settings = FinetuneSettings.from_config(config, dataset)
    meta, layers, width = run_model_settings(run_dir)
    size = settings.image_size or int(meta["model"]["image_size"])
    if size % 16:
        raise MedslipError(f"finetune.image_size {size}: the U-Net needs a multiple of 16")
    source, split, no_mask = mask_source(dataset, load_split_frame(data_dir, fraction))
    state = read_weights(run_dir)
    seed = lambda name: stream_seed(settings, ft_seed, TASK, dataset, fraction, name)  # noqa: E731
    torch.manual_seed(seed("init"))
    model = ResUNet(layers, width, 1, settings.seg_dropout)
    report = transfer_trunk(model, state, str(run_dir), prefix="encoder.").to_dict()
    model.to(device)
    optimizer = adamw(model, settings.lr, settings.weight_decay)
    flip_gen = torch.Generator().manual_seed(seed("augment"))
    torch.manual_seed(seed("dropout"))
    data = {s: ImageDataset(split.shards, split.keys(s), source) for s in ("train", "val", "test")}

    def train_epoch(epoch: int) -> float:
        model.train()
        total, count = 0.0, 0
        order = seed(f"order:{epoch}")
        for batch in batches(
            data["train"], settings.batch_size, settings.workers, order, f"epoch {epoch}"
        ):
            images = eval_transform(batch["image"].to(device), size)
            target = F.interpolate(batch["mask"].to(device).float(), size=(size, size), mode="area")
            if settings.augment:
                flip = (torch.rand(len(images), generator=flip_gen) < 0.5).to(device)
                images = torch.where(flip[:, None, None, None], images.flip(-1), images)
                target = torch.where(flip[:, None, None, None], target.flip(-1), target)
            loss = seg_loss(model(images), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(images), count + len(images)
        return total / max(count, 1)

    def validate() -> dict[str, float]:
        values = predict_overlap(model, data["val"], size, settings, device)
        return {"val_dice": float(values["dice"].mean()), "val_iou": float(values["iou"].mean())}

    result = fit(model, settings.epochs, settings.patience, train_epoch, validate, "val_dice")
    frames, tables = [], {}
    for s in ("val", "test"):
        values = predict_overlap(model, data[s], size, settings, device)
        tables[s] = values
        rows = split.frame[split.frame["split"] == s].reset_index(drop=True)
        frames.append(
            rows.assign(
                truth_pixels=values["truth"].astype(np.int64),
                pred_pixels=values["pred"].astype(np.int64),
                intersection=values["inter"].astype(np.int64),
                dice=values["dice"],
                iou=values["iou"],
            )
        )
    predictions = pd.concat(frames, ignore_index=True)[PREDICTION_COLUMNS]
    test_rows = predictions[predictions["split"] == "test"]
    notes = [f"{s}: {UNDEFINED}" for s in ("val", "test") if not (tables[s]["truth"] > 0).any()]
    if no_mask:
        notes.append(f"{no_mask} images without a mask left out (no truth)")
    if any(split.missing.values()):
        notes.append(f"images missing from the shards (quarantined): {split.missing}")
    metrics = head_of(TASK, dataset, meta, fraction, ft_seed, settings, size) | {
        "status": "ok",
        "protocol": {
            "model": "U-Net on the pretrained ResNet-to-layer3 encoder (official resunet)",
            "loss": "BCE with logits + soft Dice",
            "truth": MASK_SOURCES[dataset],
            "threshold": f"sigmoid >= {settings.seg_threshold} at the shard resolution",
            "empty_convention": "official: empty truth and empty prediction score Dice = IoU = 1; "
            "empty truth with a non-empty prediction 0",
            "selection": "best validation mean Dice (ties keep the earlier epoch); early "
            "stopping after `patience` epochs without improvement; test never seen",
            "bootstrap": {
                "unit": "patient",
                "resamples": settings.bootstrap,
                "seed": settings.bootstrap_seed,
                "level": 0.95,
            },
        },
        "images": split_counts(split.frame, split.missing) | {"left_out_without_mask": no_mask},
        "transfer": report,
        "selection": "val_dice",
        "chosen_epoch": result.best_epoch,
        "chosen_val_score": result.best_score,
        "epochs_run": len(result.curve),
        "stopped_early": result.stopped_early,
        "curve": result.curve,
        "val": overlap_summary(split.frame[split.frame["split"] == "val"], tables["val"], settings),
        "test": overlap_summary(test_rows, tables["test"], settings),
        "notes": notes,
    }
    write_outputs(out_dir, predictions, metrics)
    return metrics
