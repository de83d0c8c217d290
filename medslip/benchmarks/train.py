"""``medslip bench train``: training-step throughput of every variant next to the backbone alone.

Side by side in one run, on one preset (default ``paper``: 224 px, ResNet-50 to layer3, d 256,
4 decoder layers), on CUDA when present, fp32 (bf16 autocast with ``--bf16``), eager (compiled
with ``torch.compile`` with ``--compile``):

- ``backbone``: the same trunk alone, forward + backward + AdamW (mean of the features as loss);
- ``<variant>``: the full training step of each trained variant (the pretraining loop's
  :class:`~medslip.pretrain.loop.TrainStep`: forward and every loss term; then backward, AdamW)
  with random label matrices of the SynthCXR label density;
- ``loader``: batches of the pretraining DataLoader (uint8 images from a temporary LMDB shard of
  random 224 px images, ``--workers`` worker processes) moved to the device and augmented there
  by :class:`PretrainAugment` at the same size, as the loop does.

Writes ``results/benchmarks/train_speed.csv`` (device, batch, dtype, compile, case, steps, median_s,
images_per_s, ratio = images/s over the backbone's at the same batch and dtype; for the loader,
over MeDSLIP's step rate; gflop_per_image of the step, forward + backward, from torch's FLOP
counter; flop_bound_ratio = the backbone's FLOPs over the case's, the ratio a step running at the
backbone's FLOP rate would reach, so ``ratio / flop_bound_ratio`` says how close to its FLOP bound
a case runs) plus ``peak_mem_mb`` on CUDA, and prints it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from medslip.atomic import atomic_path
from medslip.config import load_config
from medslip.data.dataset import PretrainAugment, ShardDataset
from medslip.data.shards import ShardWriter
from medslip.model import create_model
from medslip.model.trunk import ResNetTrunk
from medslip.pretrain.loop import TrainStep
from medslip.pretrain.schedule import adamw
from medslip.settings import ModelSettings, TrainSettings
from medslip.variants import VARIANTS

TRAINED = tuple(v.name for v in VARIANTS.values() if v.trained and not v.imported)
POSITIVE_RATE, ABSENT_RATE = 0.01, 0.03  # label-matrix cell rates of SynthCXR reports


def _matrix(batch: int, generator: torch.Generator) -> torch.Tensor:
    u = torch.rand(batch, 51, 75, generator=generator)
    return torch.where(u < POSITIVE_RATE, 1, torch.where(u < POSITIVE_RATE + ABSENT_RATE, 0, -1))


def _time_steps(step, steps: int, device: torch.device) -> float:
    """Median seconds of ``steps`` calls of ``step`` after two warm-up calls."""
    times = []
    for i in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        tic = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - tic)
    return statistics.median(times)


def backbone_step(
    settings: ModelSettings,
    train: TrainSettings,
    batch: int,
    device,
    autocast,
    compile: bool = False,
):
    trunk = ResNetTrunk(settings.trunk_layers, settings.trunk_width).to(device)
    optimizer = adamw(trunk, train.warmup_lr, train.weight_decay)
    images = torch.randn(batch, 3, settings.image_size, settings.image_size, device=device)
    forward = torch.compile(trunk) if compile else trunk

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = forward(images).float().mean()
        loss.backward()
        optimizer.step()

    return step


def full_step(
    settings: ModelSettings,
    train: TrainSettings,
    batch: int,
    device,
    autocast,
    text_dim: int,
    compile: bool = False,
):
    generator = torch.Generator().manual_seed(0)
    books = (
        torch.randn(75, text_dim, generator=generator),
        torch.randn(51, text_dim, generator=generator),
    )
    model = create_model(
        settings,
        text_dim,
        books[0].to(device),
        books[1].to(device),
        clip_temperature=train.clip_temperature,
    ).to(device)
    optimizer = adamw(model, train.warmup_lr, train.weight_decay)
    images = torch.randn(batch, 3, settings.image_size, settings.image_size, device=device)
    matrix = _matrix(batch, generator).to(device)
    text = torch.randn(batch, text_dim, device=device)
    negatives = torch.Generator(device=device).manual_seed(0)
    module = TrainStep(model, train)
    forward = torch.compile(module) if compile else module

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            terms = forward(images, matrix, text, negatives)
        terms["total"].backward()
        optimizer.step()

    return step


def step_flops(step: Callable[[], None], batch: int) -> float:
    """GFLOP per image of one optimizer ``step`` (forward + backward; the optimizer's element-wise
    update is not counted), from :class:`torch.utils.flop_counter.FlopCounterMode`."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch / 1e9


def _loader_rate(
    augment: PretrainAugment, batch: int, workers: int, n: int, repeats: int, device
) -> float:
    """Images/s of the pretraining loader over a temporary LMDB shard, each batch moved to
    ``device`` and augmented there (synchronised before the clock stops on CUDA)."""
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "shard-00000.lmdb"
        rng = np.random.default_rng(0)
        with ShardWriter(shard) as writer:
            for i in range(n):
                writer.add(f"img{i:05d}", rng.integers(0, 256, (224, 224), dtype=np.uint8))
        dataset = ShardDataset(shard)
        generator = torch.Generator().manual_seed(0)
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch, num_workers=workers, shuffle=True, drop_last=True
        )
        times = []
        for _ in range(repeats):
            tic = time.perf_counter()
            count = 0
            for item in loader:
                augment(item["image"].to(device), generator)
                count += item["image"].shape[0]
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(count / (time.perf_counter() - tic))
        return statistics.median(times)


def bench_device() -> tuple[torch.device, str]:
    """The benchmark device (CUDA when present, with cuDNN autotuning) and its name for the CSV."""
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        return torch.device("cuda"), torch.cuda.get_device_name()
    return torch.device("cpu"), f"cpu x{torch.get_num_threads()}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medslip bench train", description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--variants", nargs="+", default=list(TRAINED), choices=TRAINED)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (median)")
    parser.add_argument("--text-dim", type=int, default=768, help="768: Bio_ClinicalBERT")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step's forward")
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes")
    parser.add_argument("--out", default="results/benchmarks/train_speed.csv")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    config["preset"] = args.preset
    train = TrainSettings.from_config(config)
    device, name = bench_device()
    dtype = "bf16" if args.bf16 else "fp32"
    compiled = "on" if args.compile else "off"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.bf16 else nullcontext()
    rows = []
    for batch in args.batches:
        cases = {"backbone": None, **{v: v for v in args.variants}}
        rates: dict[str, float] = {}
        flops: dict[str, float] = {}
        for case, variant in cases.items():
            settings = ModelSettings.from_config(config, variant or "medslip")
            torch.manual_seed(0)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()

            def build(compile: bool, settings=settings, variant=variant, batch=batch):
                if variant is None:
                    return backbone_step(settings, train, batch, device, autocast, compile)
                return full_step(settings, train, batch, device, autocast, args.text_dim, compile)

            step = build(False)
            flops[case] = step_flops(step, batch)  # counted eagerly: a compiled graph hides ops
            if args.compile:
                del step
                step = build(True)
            seconds = _time_steps(step, args.steps, device)
            rates[case] = batch / seconds
            rows.append(
                {
                    "device": name,
                    "batch": batch,
                    "dtype": dtype,
                    "compile": compiled,
                    "case": case,
                    "steps": args.steps,
                    "median_s": seconds,
                    "images_per_s": rates[case],
                    "ratio": rates[case] / rates["backbone"],
                    "gflop_per_image": flops[case],
                    "flop_bound_ratio": flops["backbone"] / flops[case],
                    "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20
                    if device.type == "cuda"
                    else float("nan"),
                }
            )
            del step
        augment = PretrainAugment(size=settings.image_size, scale=train.crop_scale)
        loader = _loader_rate(augment, batch, args.workers, n=8 * batch, repeats=3, device=device)
        rows.append(
            {
                "device": name,
                "batch": batch,
                "dtype": dtype,
                "compile": compiled,
                "case": "loader",
                "steps": 3,
                "median_s": batch / loader,
                "images_per_s": loader,
                "ratio": loader / rates.get("medslip", rates["backbone"]),
                "gflop_per_image": float("nan"),
                "flop_bound_ratio": float("nan"),
                "peak_mem_mb": float("nan"),
            }
        )
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    if out.is_file():  # keep rows of other devices/dtypes/compile (e.g. a GPU run) beside these
        old = pd.read_csv(out)
        if "compile" not in old:  # rows written before the column existed were eager
            old.insert(old.columns.get_loc("dtype") + 1, "compile", "off")
        keep = ~(
            old["device"].eq(name)
            & old["dtype"].eq(dtype)
            & old["compile"].eq(compiled)
            & old["batch"].isin(args.batches)
        )
        frame = pd.concat([old[keep], frame], ignore_index=True)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    print(frame.to_string(index=False))
    return 0
