"""``medslip bench preset``: the committed procedure that chooses the ``demo`` preset.

Each candidate of a selection file (default ``config/demo_selection.yaml``) overrides keys of
``presets.demo``; for each, the real pretraining loop trains the selection variant (MeDSLIP,
seed 0) on the default SynthCXR MIMIC training split, single-threaded as the default ``all``
runs it, and the candidate is scored on the validation split only: each stream's existence loss
against its image-blind prior (``gain = 1 − val / prior``; the score is the smaller of the two
streams' gains, so a candidate whose anatomy stream learns nothing scores ≤ 0). Beside it: CPU
minutes of the run, score per CPU minute, GFLOP per training image (forward + backward, from
torch's FLOP counter) and the share of it the trunk takes.

The chosen candidate is the best score among those whose CPU minutes fit the file's
``cpu_minutes_max`` (the per-variant training budget that keeps the default ``all`` within its
25 minutes on 2 cores) and whose token grid is at least ``min_grid``; ties go to the cheaper
run. Writes ``results/benchmarks/preset_selection.csv`` (one row per candidate, ``chosen``
marks the winner) and prints it. Test data is never read.

Inputs are the default run's products (``snakemake --cores 2 pretrain_data text_books`` makes
them): ``--results`` names the results directory.
"""

from __future__ import annotations

import argparse
import copy
import logging
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from medslip.atomic import atomic_path
from medslip.benchmarks.train import backbone_step, full_step, step_flops
from medslip.config import load_config, validate_config
from medslip.errors import MedslipError
from medslip.layout import RUN_FILES
from medslip.model.text_books import load_books
from medslip.pretrain.checkpoint import git_commit
from medslip.pretrain.loop import RunInputs, pretrain
from medslip.settings import STRIDE, ModelSettings, TrainSettings

log = logging.getLogger(__name__)
FLOP_BATCH = 4
"""Images per step when counting FLOPs (the count is per image)."""


def candidate_config(config: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``presets.demo`` overridden by the candidate's ``model`` and ``train``
    keys and selected, validated again (a misspelt key fails here, naming it)."""
    out = copy.deepcopy(config)
    demo = out["presets"]["demo"]
    for part in ("model", "train"):
        unknown = set(candidate.get(part, {})) - set(demo[part])
        if unknown:
            raise MedslipError(
                f"candidate {candidate['name']!r}: unknown {part} keys {sorted(unknown)}"
            )
        demo[part].update(candidate.get(part, {}))
    out["preset"] = "demo"
    return validate_config(out)


def flop_split(config: dict[str, Any], variant: str, text_dim: int) -> tuple[float, float]:
    """GFLOP per training image of ``variant``'s step (forward + backward) and the trunk's
    share of it, for the config's preset."""
    settings = ModelSettings.from_config(config, variant)
    train = TrainSettings.from_config(config)
    device, autocast = torch.device("cpu"), torch.autocast("cpu", enabled=False)
    whole = step_flops(
        full_step(settings, train, FLOP_BATCH, device, autocast, text_dim), FLOP_BATCH
    )
    trunk = step_flops(backbone_step(settings, train, FLOP_BATCH, device, autocast), FLOP_BATCH)
    return whole, trunk / whole


def score_run(run_dir: Path) -> dict[str, float]:
    """Validation existence losses of a finished run against its image-blind priors."""
    last = pd.read_csv(run_dir / RUN_FILES["epochs"]).iloc[-1]
    row: dict[str, float] = {}
    for stream, term in (("p", "exist_p"), ("a", "exist_a")):
        val, prior = float(last[f"val_{term}"]), float(last[f"prior_val_{term}"])
        row |= {f"val_{term}": val, f"prior_{term}": prior, f"gain_{stream}": 1 - val / prior}
    row["score"] = min(row["gain_p"], row["gain_a"])
    return row


def run_candidate(
    config: dict[str, Any],
    candidate: dict[str, Any],
    variant: str,
    inputs: RunInputs,
    text_dim: int,
) -> dict[str, Any]:
    """Train and score one candidate; the row of the selection table."""
    cfg = candidate_config(config, candidate)
    model, train = ModelSettings.from_config(cfg, variant), TrainSettings.from_config(cfg)
    gflop, trunk_share = flop_split(cfg, variant, text_dim)
    with tempfile.TemporaryDirectory() as tmp:
        wall, cpu = time.perf_counter(), time.process_time()
        pretrain(cfg, variant, 0, inputs, Path(tmp) / "run")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        scores = score_run(Path(tmp) / "run")
    return {
        "candidate": candidate["name"],
        "commit": git_commit(),
        "image_size": model.image_size,
        "grid": model.image_size // STRIDE,
        "trunk_layers": "-".join(map(str, model.trunk_layers)),
        "trunk_width": model.trunk_width,
        "d_model": model.d_model,
        "n_layers": model.n_layers,
        "d_ffn": model.d_ffn,
        "dropout": model.dropout,
        "memory_norm": model.memory_norm,
        "init_std": model.init_std,
        "positions": model.positions,
        "batch_size": train.batch_size,
        "epochs": train.epochs,
        "lr": train.lr,
        "crop_min": train.crop_scale[0],
        "gflop_per_image": gflop,
        "trunk_flop_share": trunk_share,
        "cpu_minutes": cpu / 60,
        "wall_minutes": wall / 60,
        **scores,
        "score_per_cpu_minute": scores["score"] / (cpu / 60),
    }


def choose(frame: pd.DataFrame, cpu_minutes_max: float, min_grid: int) -> pd.DataFrame:
    """Mark ``within_budget`` and the ``chosen`` row: the best score within the budget and the
    grid floor, the cheaper run on ties."""
    frame = frame.copy()
    frame["within_budget"] = (frame["cpu_minutes"] <= cpu_minutes_max) & (frame["grid"] >= min_grid)
    frame["chosen"] = False
    eligible = frame[frame["within_budget"]]
    if len(eligible):
        best = eligible.sort_values(["score", "cpu_minutes"], ascending=[False, True]).index[0]
        frame.loc[best, "chosen"] = True
    return frame


def read_selection(path: Path) -> dict[str, Any]:
    """The selection file: ``variant``, ``cpu_minutes_max``, ``min_grid``, ``candidates``
    (each a ``name`` with ``model`` and ``train`` overrides) and ``chosen`` (the candidate the
    last run chose, whose values the schema's ``presets.demo`` holds)."""
    with open(path) as handle:
        selection = yaml.safe_load(handle)
    required = {"variant", "cpu_minutes_max", "min_grid", "candidates", "chosen"}
    missing = required - set(selection or {})
    if missing:
        raise MedslipError(f"{path}: missing keys {sorted(missing)}")
    names = [c.get("name") for c in selection["candidates"]]
    if None in names or len(set(names)) != len(names):
        raise MedslipError(f"{path}: every candidate needs a unique name (got {names})")
    return selection


def _one_thread() -> None:
    """Each candidate trains on one thread, as the default ``all`` runs pretraining."""
    torch.set_num_threads(1)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="medslip bench preset", description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--selection", default="config/demo_selection.yaml")
    parser.add_argument("--results", default="results", help="the default run's results dir")
    parser.add_argument("--only", nargs="+", help="run these candidates only (rows are merged)")
    parser.add_argument("--jobs", type=int, default=1, help="candidates trained at once")
    parser.add_argument("--out", default="results/benchmarks/preset_selection.csv")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    selection = read_selection(Path(args.selection))
    results = Path(args.results)
    data = results / "data" / "mimic_cxr_jpg"
    inputs = RunInputs(
        shards=data / "shards",
        join_dir=results / "models" / "pretrain_data",
        reports_dir=results / "reports" / "mimic_cxr",
        splits=data / "splits.csv",
        books=results / "models" / "text_books.safetensors",
        report_embeddings=None,
    )
    text_dim = int(load_books(inputs.books).pathology.shape[-1])
    out = Path(args.out)
    chosen = [c for c in selection["candidates"] if not args.only or c["name"] in args.only]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.jobs, mp_context=context, initializer=_one_thread) as pool:
        jobs = [
            pool.submit(run_candidate, config, c, selection["variant"], inputs, text_dim)
            for c in chosen
        ]
        frame = pd.DataFrame([job.result() for job in jobs])
    old = pd.read_csv(out) if out.is_file() and args.only else pd.DataFrame()
    if len(old):
        frame = pd.concat([old[~old["candidate"].isin(frame["candidate"])], frame])
    order = {c["name"]: i for i, c in enumerate(selection["candidates"])}
    frame = frame[frame["candidate"].isin(order)]
    frame = frame.sort_values("candidate", key=lambda s: s.map(order)).reset_index(drop=True)
    frame = choose(
        frame.drop(columns=["within_budget", "chosen"], errors="ignore"),
        selection["cpu_minutes_max"],
        selection["min_grid"],
    )
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 40):
        print(frame.round(4).to_string(index=False))
    return 0
