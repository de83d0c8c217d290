"""What fine-tuning classification and segmentation share (the official
`Sample_Finetuning_SIIMACR/I1_classification/` and the official
`Sample_Finetuning_SIIMACR/I2_segmentation/`): the settings, the published training subset, the
explicit trunk transfer from a pretrained run, the seeded streams, and model selection with early
stopping on the **validation** split.

* Data: the training images of ``subset_{pct}pct`` of ``splits.csv`` (the published nested
  1 % ⊂ 10 % ⊂ 100 % subsets) plus every ``val`` and ``test`` image, restricted to the images in
  the shards (the rest are counted and noted).
* Transfer: the run's ``model.safetensors`` keys ``res_features.X`` are copied to ``X`` (under a
  target prefix) where the name and shape match; the report lists loaded, missing (keep their
  init) and unexpected (trunk keys of the file that did not fit) keys. Nothing loading is an
  error naming the file.
* Seeds: every stream derives from (master seed, fine-tuning seed, task, dataset, fraction,
  stream) with :func:`medslip.pretrain.loop.derive_seed`; the variant is deliberately not part of
  it, so every variant starts its new layers from the same init and sees the same batches
  (paired comparisons).
* Selection: after every epoch the model is scored on val; the best epoch's weights are kept
  (ties keep the earlier), training stops after ``patience`` epochs without improvement, and
  test is predicted once, with the kept weights. Test data never reach :func:`fit`.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from medslip.data.shards import GATHERED, ShardReader
from medslip.data.splits import read_split_table, subset_column
from medslip.errors import MedslipError
from medslip.layout import RUN_FILES
from medslip.pretrain.checkpoint import read_run_meta
from medslip.pretrain.loop import derive_seed
from medslip.progress import Progress, progress
from medslip.settings import FinetuneSettings

log = logging.getLogger(__name__)

TRUNK_PREFIX = "res_features."
"""Prefix of the trunk in every pretrained model's state dict."""
FT_SPLITS = ("train", "val", "test")


def fraction_pct(fraction: float) -> str:
    """``0.01`` -> ``"1"``, ``1.0`` -> ``"100"`` (the ``frac{pct}`` level and subset column)."""
    return f"{fraction * 100:g}"


def stream_seed(
    settings: FinetuneSettings, ft_seed: int, task: str, dataset: str, fraction: float, name: str
) -> int:
    """Seed of one random stream of a fine-tuning run (the same for every variant)."""
    stream = f"finetune:{task}:{dataset}:{fraction_pct(fraction)}:{name}"
    return derive_seed(settings.master_seed, ft_seed, stream)


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SplitFrame:
    """Training subset + val + test images present in the shards, in (split, image id) order.

    ``frame``: image_id, patient_id (the image id where the source has none), split.
    """

    frame: pd.DataFrame
    shards: Path
    missing: dict[str, int]

    def keys(self, split: str) -> list[str]:
        return self.frame.loc[self.frame["split"] == split, "image_id"].tolist()

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero((self.frame["split"] == split).to_numpy())


def load_split_frame(data_dir: Path, fraction: float) -> SplitFrame:
    """The :class:`SplitFrame` of ``results/data/{dataset}`` for training ``fraction``."""
    column = subset_column(fraction)
    splits = read_split_table(data_dir / "splits.csv", FT_SPLITS)
    if column not in splits.columns:
        have = [c for c in splits.columns if c.startswith("subset_")]
        raise MedslipError(
            f"{data_dir / 'splits.csv'}: no training subset {column} for fraction {fraction} "
            f"(published: {have}; see data.splits.subset_fractions)"
        )
    keep = ((splits["split"] == "train") & (splits[column] == "1")) | splits["split"].isin(
        ("val", "test")
    )
    frame = splits.loc[keep, ["image_id", "patient_id", "split"]].copy()
    shards = data_dir / "shards"
    index = pd.read_parquet(shards / GATHERED["index"], columns=["image_id"])
    present = frame["image_id"].isin(set(index["image_id"]))
    missing = {s: int((~present & (frame["split"] == s)).sum()) for s in FT_SPLITS}
    frame = frame[present]
    frame["patient_id"] = frame["patient_id"].where(frame["patient_id"] != "", frame["image_id"])
    order = frame["split"].map({s: i for i, s in enumerate(FT_SPLITS)})
    frame = frame.assign(_o=order).sort_values(["_o", "image_id"]).drop(columns="_o")
    frame = frame.reset_index(drop=True)
    for split in FT_SPLITS:
        if not (frame["split"] == split).any():
            raise MedslipError(
                f"{data_dir}: no {split} image for fraction {fraction} in the shards"
            )
    return SplitFrame(frame=frame, shards=shards, missing=missing)


class ImageDataset(torch.utils.data.Dataset):
    """Items ``{"image": uint8 (1, S, S), "index": int}`` (+ ``"mask"`` uint8 (1, S, S) from
    ``masks(key, reader)`` when given) of ``keys``."""

    def __init__(
        self,
        shards: Path,
        keys: list[str],
        masks: Callable[[str, ShardReader, tuple[int, int]], np.ndarray] | None = None,
    ) -> None:
        self.reader = ShardReader(shards)
        self.keys = keys
        self.masks = masks

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> dict[str, Any]:
        key = self.keys[index]
        image = self.reader[key]
        item = {"image": torch.from_numpy(image)[None], "index": index}
        if self.masks is not None:
            mask = self.masks(key, self.reader, image.shape)
            item["mask"] = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None]
        return item


def batches(
    dataset: ImageDataset,
    batch_size: int,
    workers: int,
    shuffle_seed: int | None,
    what: str,
) -> Iterator[dict[str, Any]]:
    """Batches of ``dataset``: shuffled with ``shuffle_seed`` (training, last partial batch kept)
    or in order (evaluation: every image, nothing dropped), with progress lines in the log."""
    generator = None
    if shuffle_seed is not None:
        generator = torch.Generator().manual_seed(shuffle_seed)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None,
        generator=generator,
        num_workers=workers,
        drop_last=False,
    )
    yield from progress(loader, what, unit="batch", logger=log)


# --------------------------------------------------------------------------- transfer


@dataclass(frozen=True)
class TransferReport:
    """Outcome of :func:`transfer_trunk` (file key names for ``loaded``/``unexpected``)."""

    path: str
    loaded: tuple[str, ...]
    missing: tuple[str, ...]
    """Target keys that received nothing (they keep their init)."""
    unexpected: tuple[str, ...]
    """Trunk keys of the file that found no target of that name and shape."""
    other: int
    """Keys of the file outside the trunk (decoders, heads...), not used."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "n_loaded": len(self.loaded),
            "n_missing": len(self.missing),
            "n_unexpected": len(self.unexpected),
            "n_other_file_keys": self.other,
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
        }

    def summary(self) -> str:
        head = lambda keys: ", ".join(keys[:6]) + (" ..." if len(keys) > 6 else "")  # noqa: E731
        return (
            f"{self.path}: loaded {len(self.loaded)} tensors; missing {len(self.missing)} "
            f"({head(self.missing)}); unexpected {len(self.unexpected)} ({head(self.unexpected)}); "
            f"{self.other} non-trunk keys not used"
        )


def read_weights(run_dir: Path) -> dict[str, Tensor]:
    """The tensors of ``model.safetensors`` of a run; a missing or corrupt file is an error
    naming it."""
    path = run_dir / RUN_FILES["weights"]
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # any reader failure means a bad checkpoint
        raise MedslipError(f"{path}: cannot read the pretrained weights ({exc})") from None


def transfer(
    module: nn.Module,
    state: dict[str, Tensor],
    mapping: dict[str, str],
    path: str,
    targets: tuple[str, ...] | None = None,
) -> TransferReport:
    """Copy ``state`` into ``module`` by explicit prefix ``mapping`` (file prefix -> module
    prefix): a file key ``src + X`` goes to ``dst + X`` when that name exists with the same
    shape. ``targets``: the module prefixes whose keys count as missing when not loaded
    (default: the mapping's destinations). Raises when nothing loads."""
    own = module.state_dict()
    matched: dict[str, Tensor] = {}
    loaded, unexpected, other = [], [], 0
    for key, tensor in state.items():
        src = next((s for s in mapping if key.startswith(s)), None)
        if src is None:
            other += 1
            continue
        name = mapping[src] + key[len(src) :]
        if name in own and own[name].shape == tensor.shape:
            matched[name] = tensor
            loaded.append(key)
        else:
            unexpected.append(key)
    if not any(name in matched for name, _ in module.named_parameters()):
        example = sorted(state)[:3]
        raise MedslipError(
            f"{path}: no pretrained key maps onto the fine-tuning model (expected "
            f"{', '.join(mapping)}* keys of matching shapes; the file has e.g. {example})"
        )
    module.load_state_dict(matched, strict=False)
    prefixes = targets if targets is not None else tuple(mapping.values())
    missing = tuple(k for k in own if k.startswith(prefixes) and k not in matched)
    report = TransferReport(path, tuple(loaded), missing, tuple(unexpected), other)
    log.info("%s", report.summary())
    return report


def transfer_trunk(
    module: nn.Module, state: dict[str, Tensor], path: str, prefix: str = ""
) -> TransferReport:
    """``res_features.X`` -> ``{prefix}X``; missing = trunk keys (conv1, bn1, layer1..3) of the
    module that got nothing."""
    trunk = tuple(f"{prefix}{p}" for p in ("conv1.", "bn1.", "layer1.", "layer2.", "layer3."))
    return transfer(module, state, {TRUNK_PREFIX: prefix}, path, targets=trunk)


def run_model_settings(run_dir: Path) -> tuple[dict[str, Any], tuple[int, int, int], int]:
    """(model.json, trunk_layers, trunk_width) of a pretrained run."""
    meta = read_run_meta(run_dir)
    model = meta["model"]
    return meta, tuple(model["trunk_layers"]), int(model["trunk_width"])


# --------------------------------------------------------------------------- selection


@dataclass
class FitResult:
    """Outcome of :func:`fit`: the kept epoch (0-based), its validation score, the curve (one
    dict per epoch run: epoch, train_loss, and the validation values) and whether training
    stopped early."""

    best_epoch: int
    best_score: float
    curve: list[dict[str, float]]
    stopped_early: bool


def fit(
    model: nn.Module,
    epochs: int,
    patience: int | None,
    train_epoch: Callable[[int], float],
    validate: Callable[[], dict[str, float]],
    criterion: str,
) -> FitResult:
    """Train ``epochs`` epochs (``train_epoch(epoch) -> mean loss``), score on validation after
    each (``validate() -> {criterion: value, ...}``, higher is better), keep the best epoch's
    weights in ``model`` at the end, and stop after ``patience`` epochs without a strictly
    better score (None: never early). A NaN score never counts as better; when every epoch is
    NaN the last epoch is kept."""
    best_state, best_score, best_epoch = None, -math.inf, -1
    curve: list[dict[str, float]] = []
    stale, stopped = 0, False
    bar = Progress("fine-tuning", epochs, unit="epoch", every=float("inf"), logger=log)
    for epoch in range(epochs):
        loss = train_epoch(epoch)
        values = validate()
        curve.append({"epoch": epoch, "train_loss": loss} | values)
        score = values[criterion]
        bar.update()
        log.info(
            "epoch %d: train loss %.4f, val %s %.4f (%s)",
            epoch,
            loss,
            criterion,
            score,
            bar.status(),
        )
        if math.isfinite(score) and score > best_score:
            best_state = copy.deepcopy(model.state_dict())
            best_score, best_epoch, stale = score, epoch, 0
        else:
            stale += 1
        if patience is not None and stale >= patience and epoch < epochs - 1:
            stopped = True
            break
    if best_state is None:
        best_epoch, best_score = len(curve) - 1, float("nan")
    else:
        model.load_state_dict(best_state)
    return FitResult(best_epoch, best_score, curve, stopped)


def head_of(
    task: str,
    dataset: str,
    meta: dict[str, Any],
    fraction: float,
    ft_seed: int,
    settings: FinetuneSettings,
    image_size: int,
) -> dict[str, Any]:
    """The identifying part of a fine-tuning metrics file."""
    return {
        "task": task,
        "dataset": dataset,
        "variant": meta["variant"],
        "seed": meta["seed"],
        "fraction": fraction,
        "pct": fraction_pct(fraction),
        "ft_seed": ft_seed,
        "seeds": {
            "master": settings.master_seed,
            "finetune": ft_seed,
            "pretrain": meta["seed"],
            "bootstrap": settings.bootstrap_seed,
            "streams": "derive_seed(master, ft_seed, 'finetune:{task}:{dataset}:{pct}:{stream}'),"
            " streams init, order, augment, dropout (the same for every variant)",
        },
        "settings": {
            "epochs": settings.epochs,
            "patience": settings.patience,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "weight_decay": settings.weight_decay,
            "image_size": image_size,
            "augment": settings.augment,
        },
    }


def split_counts(frame: pd.DataFrame, missing: dict[str, int]) -> dict[str, Any]:
    """Images per split and those missing from the shards."""
    return {s: int((frame["split"] == s).sum()) for s in FT_SPLITS} | {
        "missing_from_shards": missing
    }
