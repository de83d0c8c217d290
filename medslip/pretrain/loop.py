"""The pretraining loop: seeded, resumable, single-process or DDP (``torchrun``).

Every random stream derives from (master seed, run seed, stream name, epoch) through
:func:`derive_seed`, so an epoch's batches, augmentations, dropout masks and ProtoCL negatives do
not depend on whether the run was resumed: a run killed after a checkpoint and rerun ends with
the same weights as an uninterrupted one (bitwise on CPU, with deterministic algorithms).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from medslip.atomic import atomic_path
from medslip.data.dataset import PretrainAugment, eval_transform
from medslip.errors import MedslipError
from medslip.hashing import sha256_of
from medslip.layout import RUN_FILES
from medslip.model import create_model
from medslip.model.losses import (
    excluded_entities,
    prior_existence_loss,
    stream_existence_labels,
)
from medslip.model.text_books import load_books
from medslip.pretrain.checkpoint import (
    git_commit,
    resume,
    save_checkpoint,
    save_final,
)
from medslip.pretrain.join import PretrainDataset, load_tables, report_embeddings_by_row
from medslip.pretrain.schedule import adamw, learning_rate
from medslip.progress import Progress
from medslip.settings import ModelSettings, TextSettings, TrainSettings
from medslip.variants import variant as get_variant
from medslip.vocab import LATERAL_SWAP

log = logging.getLogger(__name__)
RESOURCE_KEYS = ("workers", "cpu_threads", "gpus", "mem_mb", "runtime_min", "compile")
"""Training settings that change where and how fast a run goes, not its result."""


@dataclass(frozen=True)
class RunInputs:
    """Paths a pretraining run reads."""

    shards: Path  # results/data/mimic_cxr_jpg/shards
    join_dir: Path  # output of medslip pretrain-data
    reports_dir: Path  # results/reports/mimic_cxr
    splits: Path  # results/data/mimic_cxr_jpg/splits.csv
    books: Path  # results/models/text_books.safetensors
    report_embeddings: Path | None  # global_clip only

    def hashes(self) -> dict[str, str]:
        files = {
            "label_matrix": self.reports_dir / "label_matrix.npy",
            "uncertain_mask": self.reports_dir / "uncertain_mask.npy",
            "join": self.join_dir / "images.parquet",
            "splits": self.splits,
            "shards_summary": self.shards / "summary.json",
            "text_books": self.books,
        }
        if self.report_embeddings is not None:
            files["report_embeddings"] = self.report_embeddings
        return {name: sha256_of(path) for name, path in files.items() if path.exists()}


def derive_seed(master: int, seed: int, stream: str) -> int:
    """A 63-bit seed for one random stream of a run."""
    digest = hashlib.sha256(f"{master}:{seed}:{stream}".encode()).hexdigest()
    return int(digest[:16], 16) & ((1 << 63) - 1)


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(use_cuda: bool) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return _Dist()
    dist.init_process_group("nccl" if use_cuda else "gloo")
    return _Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


class TrainStep(torch.nn.Module):
    """Forward + loss in one module, so DDP sees every parameter the loss uses."""

    def __init__(self, model: torch.nn.Module, settings: TrainSettings) -> None:
        super().__init__()
        self.model = model
        self.settings = settings

    def forward(self, images, matrix, text, generator) -> dict[str, torch.Tensor]:
        out = self.model(images, text=text)
        return self.model.loss(
            out,
            matrix,
            generator=generator,
            alpha=self.settings.alpha,
            beta=self.settings.beta,
            n_negatives=self.settings.n_negatives,
            exclude=excluded_entities(self.settings.exclude_class, images.device),
        )


def fingerprint(
    config: dict[str, Any], variant: str, seed: int, inputs: RunInputs
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: settings, seeds and input hashes."""
    train = TrainSettings.from_config(config).to_dict()
    return {
        "variant": variant,
        "seed": seed,
        "master_seed": config["seed"],
        "model": ModelSettings.from_config(config, variant).to_dict(),
        "train": {k: v for k, v in train.items() if k not in RESOURCE_KEYS},
        "text": TextSettings.from_config(config).to_dict(),
        "inputs": inputs.hashes(),
    }


def pretrain(
    config: dict[str, Any], variant: str, seed: int, inputs: RunInputs, run_dir: Path
) -> dict[str, Any]:
    """Train ``variant`` with run seed ``seed`` into ``run_dir``; returns the model.json dict."""
    if get_variant(variant).imported:
        raise MedslipError(
            f"{variant}: imported from a published checkpoint (medslip import-checkpoint), "
            "not trained"
        )
    model_settings = ModelSettings.from_config(config, variant)
    train = TrainSettings.from_config(config)
    use_cuda = train.gpus > 0 and torch.cuda.is_available()
    ddp = _init_distributed(use_cuda)
    device = torch.device(f"cuda:{ddp.local_rank}" if use_cuda else "cpu")
    if not use_cuda:
        torch.use_deterministic_algorithms(True)
    master = config["seed"]
    torch.manual_seed(derive_seed(master, seed, "init"))
    books = load_books(inputs.books)
    model = create_model(
        model_settings,
        books.dim,
        books.pathology.to(device),
        books.anatomy.to(device),
        clip_temperature=train.clip_temperature,
    ).to(device)
    stamp = fingerprint(config, variant, seed, inputs)
    optimizer = adamw(model, train.warmup_lr, train.weight_decay)
    trained = get_variant(variant).trained
    start = resume(run_dir, model, optimizer, stamp) if trained else 0
    history = _History(run_dir, start)
    if trained:
        run = _Run(
            model,
            optimizer,
            train,
            model_settings,
            inputs,
            run_dir,
            stamp,
            history,
            ddp,
            device,
            master,
            seed,
        )
        _fit(run, start)
    meta = {
        "variant": variant,
        "seed": seed,
        "master_seed": master,
        "seed_streams": "sha256(f'{master_seed}:{seed}:{stream}')[:16], streams init, "
        "sampler, epoch{e}:torch, epoch{e}:augment, epoch{e}:negatives, val",
        "preset": config["preset"],
        "model": model_settings.to_dict(),
        "train": train.to_dict(),
        "text": TextSettings.from_config(config).to_dict(),
        "text_books": books.meta,
        "epochs_trained": train.epochs if trained else 0,
        "git_commit": git_commit(),
        "inputs": stamp["inputs"],
        "final_epoch": history.last_epoch(),
        "prior_val_losses": history.prior,
    }
    if ddp.main:
        save_final(run_dir, model, meta)
    if ddp.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return meta


def _loader(dataset, batch: int, ddp: _Dist, seed: int, workers: int, shuffle: bool):
    sampler = torch.utils.data.DistributedSampler(
        dataset,
        num_replicas=ddp.world,
        rank=ddp.rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=shuffle,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch,
        sampler=sampler,
        drop_last=shuffle,
        num_workers=workers,
        persistent_workers=False,
        pin_memory=False,
    )
    return sampler, loader


@dataclass
class _Run:
    """One pretraining run being fitted: the model and optimizer, its settings and inputs, where
    it writes, its process group and device, and its seeds (master seed, run seed)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    train: TrainSettings
    model_settings: ModelSettings
    inputs: RunInputs
    run_dir: Path
    stamp: dict
    history: _History
    ddp: _Dist
    device: torch.device
    master: int
    seed: int

    def stream(self, name: str) -> int:
        """The seed of one random stream of this run (:func:`derive_seed`)."""
        return derive_seed(self.master, self.seed, name)

    def report_text(self) -> torch.Tensor | None:
        """Whole-report embeddings (N_reports, D) by report row, for variants that contrast
        with them; else None."""
        if not get_variant(self.model_settings.variant).needs_report_embeddings:
            return None
        return report_embeddings_by_row(
            self.inputs.report_embeddings, self.inputs.reports_dir / "report_ids.txt"
        ).to(self.device)

    def loaders(self) -> tuple[Any, Any, Any]:
        """(train sampler, train loader, val loader) of micro-batches of the joined images;
        records the image-blind prior's validation losses in the history."""
        train, ddp = self.train, self.ddp
        per_step = ddp.world * train.grad_accum
        if train.batch_size % per_step:
            raise MedslipError(
                f"train.batch_size {train.batch_size} is not divisible by GPUs x grad_accum "
                f"({ddp.world} x {train.grad_accum})"
            )
        micro = train.batch_size // per_step
        tables = load_tables(self.inputs.join_dir, self.inputs.reports_dir, train.uncertain)
        dataset = PretrainDataset(self.inputs.shards, tables, "train")
        if len(dataset) < train.batch_size:
            raise MedslipError(
                f"{self.inputs.join_dir}: {len(dataset)} training images, fewer than one batch "
                f"(train.batch_size {train.batch_size})"
            )
        val = PretrainDataset(self.inputs.shards, tables, "val")
        self.history.prior = prior_losses(
            dataset, val, self.model_settings.variant, self.train.exclude_class
        )
        sampler, loader = _loader(
            dataset, micro, ddp, self.stream("sampler"), train.workers, shuffle=True
        )
        _, val_loader = _loader(val, micro, _Dist(), 0, train.workers, shuffle=False)
        return sampler, loader, val_loader

    def step_module(self) -> torch.nn.Module:
        """Forward + loss, wrapped for DDP and compiled as the settings ask."""
        module: torch.nn.Module = TrainStep(self.model, self.train)
        if self.ddp.world > 1:
            module = torch.nn.parallel.DistributedDataParallel(
                module,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        return torch.compile(module) if self.train.compile else module


def _fit(run: _Run, start: int) -> None:
    """Train epochs ``start`` .. ``train.epochs - 1``: each a seeded pass over the training
    split, then the validation losses, the epoch's metric rows and a resumable checkpoint."""
    train = run.train
    text = run.report_text()
    sampler, loader, val_loader = run.loaders()
    epoch_pass = _EpochPass(run, run.step_module(), text)
    steps_per_epoch = len(loader) // train.grad_accum
    bar = Progress(
        f"pretrain {run.model_settings.variant} seed {run.seed}",
        (train.epochs - start) * steps_per_epoch,
        unit="step",
        logger=log,
        enabled=run.ddp.main,
    )
    for epoch in range(start, train.epochs):
        sampler.set_epoch(epoch)
        epoch_pass(epoch, loader, steps_per_epoch, bar)
        val_terms = _validate(
            run.model, val_loader, run.model_settings, train, run.device, text, run.stream("val")
        )
        if run.ddp.main:
            run.history.epoch_done(epoch, val_terms)
            save_checkpoint(run.run_dir, epoch, run.model, run.optimizer, run.stamp)
        if run.ddp.world > 1:
            dist.barrier()
    bar.close()


class _EpochPass:
    """One epoch of optimizer steps, each over ``grad_accum`` augmented micro-batches."""

    def __init__(self, run: _Run, step_module: torch.nn.Module, text: torch.Tensor | None):
        self.run, self.step_module, self.text = run, step_module, text
        device = run.device
        self.augment = PretrainAugment(
            size=run.model_settings.image_size, scale=run.train.crop_scale
        )
        self.swap = torch.tensor(LATERAL_SWAP, device=device)
        self.autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
        )

    def __call__(self, epoch: int, loader, steps_per_epoch: int, bar: Progress) -> None:
        run, train = self.run, self.run.train
        rank = run.ddp.rank
        torch.manual_seed(run.stream(f"epoch{epoch}:torch") + rank)
        aug_gen = torch.Generator().manual_seed(run.stream(f"epoch{epoch}:augment") + rank)
        neg_gen = torch.Generator(device=run.device).manual_seed(
            run.stream(f"epoch{epoch}:negatives") + rank
        )
        run.model.train()
        batches = iter(loader)  # after seeding: the loader draws its base seed from torch's RNG
        for step in range(steps_per_epoch):
            tic = time.perf_counter()
            lr = learning_rate(train, epoch, step)
            for group in run.optimizer.param_groups:
                group["lr"] = lr
            run.optimizer.zero_grad(set_to_none=True)
            terms_sum: dict[str, float] = {}
            for _ in range(train.grad_accum):
                terms = self.micro_step(next(batches), aug_gen, neg_gen)
                for name, value in terms.items():
                    terms_sum[name] = terms_sum.get(name, 0.0) + value / train.grad_accum
            if not math.isfinite(terms_sum["total"]):
                raise MedslipError(
                    f"non-finite loss {terms_sum} at epoch {epoch + 1} step {step + 1}; the last "
                    f"good checkpoint in {run.run_dir / RUN_FILES['checkpoints']} is intact"
                )
            run.optimizer.step()
            rate = train.batch_size / (time.perf_counter() - tic)
            run.history.step(epoch, epoch * steps_per_epoch + step, lr, rate, terms_sum)
            bar.update(epoch=f"{epoch + 1}/{train.epochs}", loss=terms_sum["total"], img_s=rate)

    def micro_step(
        self, batch: dict, aug_gen: torch.Generator, neg_gen: torch.Generator
    ) -> dict[str, float]:
        """Augment one micro-batch (swapping laterality in the labels of flipped images),
        forward, backward (scaled by ``grad_accum``); returns its loss terms."""
        run, device = self.run, self.run.device
        images, flipped = self.augment.apply(batch["image"].to(device), aug_gen)
        matrix = batch["matrix"].to(device).long()
        if run.train.flip_swaps_laterality:
            flipped = flipped.to(device)
            matrix = torch.where(flipped[:, None, None], matrix[:, self.swap], matrix)
        report = self.text[batch["study"].to(device)] if self.text is not None else None
        with self.autocast:
            terms = self.step_module(images, matrix, report, neg_gen)
        (terms["total"] / run.train.grad_accum).backward()
        return {name: float(value.detach()) for name, value in terms.items()}


@torch.no_grad()
def _validate(
    model,
    loader,
    model_settings: ModelSettings,
    train: TrainSettings,
    device: torch.device,
    text,
    seed: int,
) -> dict[str, float]:
    """Mean loss terms on the validation split with the evaluation transform."""
    model.eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, float] = {}
    count = 0
    for batch in loader:
        images = eval_transform(batch["image"].to(device), model_settings.image_size)
        report = text[batch["study"].to(device)] if text is not None else None
        out = model(images, text=report)
        terms = model.loss(
            out,
            batch["matrix"].to(device).long(),
            generator=generator,
            alpha=train.alpha,
            beta=train.beta,
            n_negatives=train.n_negatives,
            exclude=excluded_entities(train.exclude_class, device),
        )
        n = images.shape[0]
        count += n
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
    return {name: value / count for name, value in sums.items()} if count else {}


def prior_losses(
    train: PretrainDataset, val: PretrainDataset, variant: str, exclude_class: bool
) -> dict[str, float]:
    """Validation existence losses of the image-blind prior (each entity's / landmark's training
    base rate) for each existence head of ``variant``: the floor a stream must beat to show it
    learns from images (``exist_p``: 75 entities, less those ``exclude_class`` leaves out, as in
    the model's loss; ``exist_a``: 51 landmarks, two-stream only)."""
    heads = {"pathology": "exist_p", "anatomy": "exist_a"}
    streams = get_variant(variant).streams
    if not streams or not len(val):
        return {}
    labels = {
        name: stream_existence_labels(torch.from_numpy(part.matrices[part.rows]), exclude_class)
        for name, part in (("train", train), ("val", val))
    }
    return {heads[s]: prior_existence_loss(labels["train"][s], labels["val"][s]) for s in streams}


class _History:
    """Per-step and per-epoch metric rows, rewritten atomically after each epoch; rows of epochs
    after the resumed checkpoint are dropped. ``prior``: the image-blind prior's validation
    losses, written beside every epoch (``prior_val_<term>``)."""

    def __init__(self, run_dir: Path, start: int) -> None:
        self.paths = {k: run_dir / RUN_FILES[k] for k in ("steps", "epochs")}
        self.rows: dict[str, list[dict]] = {}
        for key, path in self.paths.items():
            old = pd.read_csv(path) if path.is_file() and start > 0 else pd.DataFrame()
            keep = old[old["epoch"] <= start] if len(old) else old
            self.rows[key] = keep.to_dict("records")
        self._epoch_steps: list[dict] = []
        self.prior: dict[str, float] = {}

    def step(self, epoch: int, step: int, lr: float, rate: float, terms: dict) -> None:
        self._epoch_steps.append(
            {"epoch": epoch + 1, "step": step + 1, "lr": lr, "img_per_s": rate} | terms
        )

    def epoch_done(self, epoch: int, val_terms: dict[str, float]) -> None:
        frame = pd.DataFrame(self._epoch_steps)
        means = frame.drop(columns=["epoch", "step"]).mean().to_dict()
        self.rows["steps"].extend(self._epoch_steps)
        self.rows["epochs"].append(
            {"epoch": epoch + 1, "lr": self._epoch_steps[-1]["lr"]}
            | {f"train_{k}": v for k, v in means.items() if k != "lr"}
            | {f"val_{k}": v for k, v in val_terms.items()}
            | {f"prior_val_{k}": v for k, v in self.prior.items()}
        )
        self._epoch_steps = []
        for key, path in self.paths.items():
            with atomic_path(path) as tmp:
                pd.DataFrame(self.rows[key]).to_csv(tmp, index=False)

    def last_epoch(self) -> dict[str, Any]:
        rows = self.rows["epochs"]
        return (
            {k: (float(v) if isinstance(v, np.floating) else v) for k, v in rows[-1].items()}
            if rows
            else {}
        )
