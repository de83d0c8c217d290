"""Pretraining on SynthCXR (the `.test/` config's tiny preset): learning, resume after SIGKILL,
DDP vs one process, refused checkpoints, non-finite losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

from medslip.config import validate_config
from medslip.data.dataset import eval_transform
from medslip.errors import MedslipError
from medslip.layout import RUN_FILES
from medslip.model import create_model
from medslip.model.text_books import load_books
from medslip.pretrain import loop
from medslip.pretrain.join import PretrainDataset, load_tables
from medslip.settings import ModelSettings
from tests.conftest import REPO

pytestmark = pytest.mark.e2e
TEST_CONFIG = yaml.safe_load((REPO / ".test/config.yaml").read_text())


@pytest.fixture(scope="module")
def work(e2e_workdir) -> Path:
    """The workdir of the `.test/` run of `all` (its pretraining inputs are read, never written)."""
    return e2e_workdir


def _config(**train) -> dict:
    config = json.loads(json.dumps(TEST_CONFIG))
    config["presets"]["tiny"]["train"].update(train)
    return validate_config(config)


def _inputs(work: Path) -> loop.RunInputs:
    data = work / "results/data/mimic_cxr_jpg"
    return loop.RunInputs(
        shards=data / "shards",
        join_dir=work / "results/models/pretrain_data",
        reports_dir=work / "results/reports/mimic_cxr",
        splits=data / "splits.csv",
        books=work / "results/models/text_books.safetensors",
        report_embeddings=None,
    )


def _command(work: Path, config: dict, run_dir: Path) -> list[str]:
    return [
        "--config",
        json.dumps(config),
        "--variant",
        "medslip",
        "--seed",
        "0",
        "--data",
        str(work / "results/data/mimic_cxr_jpg"),
        "--reports",
        str(work / "results/reports/mimic_cxr"),
        "--join",
        str(work / "results/models/pretrain_data"),
        "--books",
        str(work / "results/models/text_books.safetensors"),
        "--out",
        str(run_dir),
    ]


def _pretrain_cli(work: Path, config: dict, run_dir: Path) -> None:
    """`medslip pretrain` of medslip seed 0 into ``run_dir`` as a subprocess."""
    subprocess.run(
        [sys.executable, "-m", "medslip.cli", "pretrain", *_command(work, config, run_dir)],
        check=True,
        env=_env(),
        capture_output=True,
        timeout=600,
    )


def _env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def test_join_counts_every_image(work):
    counts = pd.read_csv(work / "results/models/pretrain_data/counts.csv")
    images = pd.read_parquet(work / "results/models/pretrain_data/images.parquet")
    manifest = pd.read_parquet(work / "results/data/mimic_cxr_jpg/manifest.parquet")
    per_kind = counts.groupby("kind")["total"].sum()
    assert per_kind["images"] == len(manifest)
    joined = counts.query("kind == 'images' and status == 'joined'")["total"].item()
    assert joined == len(images) >= 16
    assert set(images["study_id"]) <= set(manifest["study_id"])


def _tables(work: Path):
    return load_tables(_inputs(work).join_dir, _inputs(work).reports_dir, "unmentioned")


def test_full_model_learns_synthcxr_studies(work):
    """16 SynthCXR studies: the full model's training loss falls by >= 90 % within 300 steps."""
    config = _config()
    tables = _tables(work)
    tables.images["split"] = "train"
    data = PretrainDataset(_inputs(work).shards, tables, "train")
    batch = torch.utils.data.default_collate([data[i] for i in range(16)])
    images = eval_transform(batch["image"], 64)
    matrix = batch["matrix"].long()
    books = load_books(_inputs(work).books)
    torch.manual_seed(0)
    model = create_model(
        ModelSettings.from_config(config, "medslip"), books.dim, books.pathology, books.anatomy
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        terms = model.loss(
            model(images), matrix, generator=generator, alpha=1.0, beta=1.0, n_negatives=7
        )
        terms["total"].backward()
        optimizer.step()
        losses.append(float(terms["total"].detach()))
        if losses[-1] <= 0.1 * losses[0]:
            break
    assert losses[-1] <= 0.1 * losses[0], (losses[0], losses[-1], len(losses))


def test_run_writes_model_metrics_and_provenance(work, tmp_path):
    meta = loop.pretrain(_config(), "medslip", 0, _inputs(work), tmp_path)
    saved = json.loads((tmp_path / RUN_FILES["meta"]).read_text())
    assert saved["variant"] == "medslip" and saved["seed"] == 0 == meta["seed"]
    assert {"label_matrix", "splits", "text_books", "join"} <= set(saved["inputs"])
    assert saved["git_commit"]
    epochs = pd.read_csv(tmp_path / RUN_FILES["epochs"])
    assert list(epochs["epoch"]) == [1, 2]
    for column in ("train_exist_p", "train_protocl_p", "train_icl", "val_total", "lr"):
        assert column in epochs and np.isfinite(epochs[column]).all()
    prior = saved["prior_val_losses"]
    assert set(prior) == {"exist_p", "exist_a"} and all(0 < v < 20 for v in prior.values())
    assert np.allclose(epochs["prior_val_exist_a"], prior["exist_a"])
    steps = pd.read_csv(tmp_path / RUN_FILES["steps"])
    assert (steps["img_per_s"] > 0).all() and steps["step"].is_monotonic_increasing
    weights = load_file(tmp_path / RUN_FILES["weights"])
    assert any(k.startswith("decoder_pathology") for k in weights)


def test_resume_after_sigkill_is_bitwise_equal(work, tmp_path):
    config = _config(epochs=4)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _pretrain_cli(work, config, straight)
    cmd = [sys.executable, "-m", "medslip.cli", "pretrain"]
    proc = subprocess.Popen(
        [*cmd, *_command(work, config, killed)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = killed / RUN_FILES["checkpoints"] / "epoch-0000"
    deadline = time.time() + 300
    while not first.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / RUN_FILES["weights"]).exists(), "the run finished before the kill"
    _pretrain_cli(work, config, killed)
    a, b = load_file(straight / RUN_FILES["weights"]), load_file(killed / RUN_FILES["weights"])
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_foreign_checkpoint_is_refused_and_kept(work, tmp_path):
    loop.pretrain(_config(epochs=1), "medslip", 0, _inputs(work), tmp_path)
    (tmp_path / RUN_FILES["weights"]).unlink()
    with pytest.raises(MedslipError, match="checkpoint of another run.*train.lr"):
        loop.pretrain(_config(epochs=1, lr=5e-4), "medslip", 0, _inputs(work), tmp_path)
    assert (tmp_path / RUN_FILES["checkpoints"] / "epoch-0000" / "weights.safetensors").is_file()


def test_corrupt_checkpoint_falls_back_to_the_previous(work, tmp_path, caplog):
    loop.pretrain(_config(epochs=2), "medslip", 0, _inputs(work), tmp_path)
    (tmp_path / RUN_FILES["checkpoints"] / "epoch-0001" / "weights.safetensors").write_bytes(b"x")
    # The epoch-0001 checkpoint is unreadable: the run resumes from epoch 0 and still finishes.
    (tmp_path / RUN_FILES["weights"]).unlink()
    loop.pretrain(_config(epochs=2), "medslip", 0, _inputs(work), tmp_path)
    epochs = pd.read_csv(tmp_path / RUN_FILES["epochs"])
    assert list(epochs["epoch"]) == [1, 2]
    assert "epoch-0001: corrupt checkpoint" in caplog.text


def test_non_finite_loss_stops_naming_the_step(work, tmp_path, monkeypatch):
    real = loop.TrainStep.forward
    calls = {"n": 0}
    steps_per_epoch = len(PretrainDataset(_inputs(work).shards, _tables(work), "train")) // 4

    def poisoned(self, *args):
        terms = real(self, *args)
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 2:  # epoch 2, step 2
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(loop.TrainStep, "forward", poisoned)
    with pytest.raises(MedslipError, match="non-finite loss .* epoch 2 step 2"):
        loop.pretrain(_config(epochs=2), "medslip", 0, _inputs(work), tmp_path)
    assert (tmp_path / RUN_FILES["checkpoints"] / "epoch-0000" / "weights.safetensors").is_file()
    assert not (tmp_path / RUN_FILES["checkpoints"] / "epoch-0001").exists()
    assert not (tmp_path / RUN_FILES["weights"]).exists()


def test_ddp_two_processes_match_one_process(work, tmp_path):
    """torchrun --nproc_per_node 2 (gloo, CPU) at the same global batch follows the
    single-process loss curve: the mean training loss over 4 epochs within 15 %, both falling.

    Not bitwise: each rank draws its own augmentations and ProtoCL negatives, normalises
    BatchNorm over its half batch and averages its own loss terms (DDP averages gradients)."""
    config = _config(epochs=4)
    single, double = tmp_path / "single", tmp_path / "double"
    _pretrain_cli(work, config, single)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "medslip.cli",
        "pretrain",
    ]
    res = subprocess.run(
        [*torchrun, *_command(work, config, double)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    a = pd.read_csv(single / RUN_FILES["epochs"])["train_total"].to_numpy()
    b = pd.read_csv(double / RUN_FILES["epochs"])["train_total"].to_numpy()
    assert len(a) == len(b) == 4
    assert abs(a.mean() - b.mean()) <= 0.15 * a.mean(), (a, b)
    assert a[-1] < a[0] and b[-1] < b[0]
