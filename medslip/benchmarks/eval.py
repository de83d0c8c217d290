"""``medslip bench eval``: evaluation throughput next to the model's bare forward pass.

Side by side in one run (the cases interleaved round by round), per variant and batch, on one
preset (default ``paper``), fp32, eval mode, no gradients, uint8 (B, 1, S, S) shard images as
input:

- ``forward``: ``model(eval_transform(images))``, the bare forward pass (the reference);
- ``zeroshot``: the transform + ``existence_probability`` (pathology stream only);
- ``grounding``: the transform + forward with attention maps + :func:`attention_maps`
  (``use_ws_p``), per-image normalisation and bilinear upsampling to S for 2 classes.

Writes ``results/benchmarks/eval_speed.csv`` (device, variant, batch, case, steps, median_s,
images_per_s, ratio = images/s over the bare forward's; floor 0.8) and prints it. Rows of other
devices already in the file are kept.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from medslip.atomic import atomic_path
from medslip.benchmarks.train import bench_device
from medslip.config import load_config
from medslip.data.dataset import eval_transform
from medslip.evaluate.grounding import attention_maps, normalise, upsample
from medslip.model import create_model
from medslip.settings import ModelSettings, TrainSettings
from medslip.variants import VARIANTS
from medslip.variants import variant as get_variant
from medslip.vocab import ENTITY_INDEX

FLOOR = 0.8
CLASSES = ("pneumonia", "pneumothorax")


FAMILY_FIRSTS = list(
    {v.family: v.name for v in reversed(VARIANTS.values()) if v.trained and not v.imported}.values()
)[::-1]
"""The default variants: the first trained variant of each model family (registry order)."""


def _cases(model: torch.nn.Module, images: torch.Tensor, size: int, variant: str) -> dict:
    entities = torch.tensor([ENTITY_INDEX[e] for e in CLASSES], device=images.device)
    entry = get_variant(variant)
    use_ws_p = entry.has_anatomy_stream

    def forward() -> None:
        model(eval_transform(images, size))

    def zeroshot() -> None:
        model.existence_probability(eval_transform(images, size))

    def grounding() -> None:
        out = model(eval_transform(images, size), return_attention=True)
        maps = normalise(attention_maps(out, entities, use_ws_p), batch_max=False)
        upsample(maps.flatten(0, 1), images.shape[-1], "bilinear")

    cases = {"forward": forward, "zeroshot": zeroshot}
    return cases | ({"grounding": grounding} if entry.does("grounding") else {})


def interleaved(cases: dict[str, Callable[[], None]], steps: int, device) -> dict[str, float]:
    """Median seconds per case over ``steps`` rounds (after one warm-up round) that run every
    case once in turn, so that load changes on a shared machine hit all cases alike."""
    times: dict[str, list[float]] = {case: [] for case in cases}
    for round_ in range(steps + 1):
        for case, step in cases.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            tic = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_:
                times[case].append(time.perf_counter() - tic)
    return {case: statistics.median(values) for case, values in times.items()}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medslip bench eval", description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--variants", nargs="+", default=FAMILY_FIRSTS)
    parser.add_argument("--batches", type=int, nargs="+", default=[16])
    parser.add_argument("--shard-size", type=int, default=224, help="side of the uint8 input")
    parser.add_argument("--steps", type=int, default=7, help="timed rounds (median)")
    parser.add_argument("--text-dim", type=int, default=768, help="768: Bio_ClinicalBERT")
    parser.add_argument("--out", default="results/benchmarks/eval_speed.csv")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    config["preset"] = args.preset
    train = TrainSettings.from_config(config)
    device, name = bench_device()
    generator = torch.Generator().manual_seed(0)
    books = (
        torch.randn(75, args.text_dim, generator=generator),
        torch.randn(51, args.text_dim, generator=generator),
    )
    rows = []
    for variant in args.variants:
        settings = ModelSettings.from_config(config, variant)
        torch.manual_seed(0)
        model = create_model(
            settings,
            args.text_dim,
            books[0].to(device),
            books[1].to(device),
            clip_temperature=train.clip_temperature,
        )
        model = model.to(device).eval()
        for batch in args.batches:
            size = args.shard_size
            images = torch.randint(0, 256, (batch, 1, size, size), generator=generator)
            images = images.to(torch.uint8).to(device)
            with torch.no_grad():
                cases = _cases(model, images, settings.image_size, variant)
                seconds = interleaved(cases, args.steps, device)
            for case, median in seconds.items():
                rows.append(
                    {
                        "device": name,
                        "variant": variant,
                        "preset": args.preset,
                        "batch": batch,
                        "case": case,
                        "steps": args.steps,
                        "median_s": median,
                        "images_per_s": batch / median,
                        "ratio": seconds["forward"] / median,
                        "floor": FLOOR,
                    }
                )
    frame = pd.DataFrame(rows)
    out = Path(args.out)
    if out.is_file():  # keep rows of other devices (e.g. a GPU run) beside these
        old = pd.read_csv(out)
        frame = pd.concat([old[old["device"] != name], frame], ignore_index=True)
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    print(frame.to_string(index=False))
    below = frame[(frame["case"] != "forward") & (frame["ratio"] < FLOOR)]
    return 1 if len(below) else 0
