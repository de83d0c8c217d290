"""The SLURM profile (workflow/profiles/slurm): its requests in a dry run (no SLURM needed), and on
a real one-node cluster on localhost (scripts/slurm_local.sh) the `reports` stage goes through
sbatch and gives the outputs of a local run (skipped where SLURM is not installed)."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import yaml

from tests._workflow import make_workdir, snakemake
from tests.conftest import REPO

SCRIPT = "scripts/slurm_local.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
SLURM_RULES = {"synth", "parse_reports_chunk", "parse_reports_gather"}
GATHERED = "results/reports/mimic_cxr"
SLURM_LOGS = "results/logs/slurm"
CONFIG_SIZED = {"pretrain", "evaluate_zeroshot", "evaluate_grounding", "evaluate_probe"}
CONFIG_SIZED |= {"finetune_cls", "finetune_seg", "figure_grounding_overlays"}
"""Rules whose gpu/mem_mb/runtime come from the config (they grow with the model preset)."""
IMPORT_RULES = {"import_checkpoint", "text_books_official"}
"""Rules of imported checkpoints only, which .test/config.yaml has none of."""
GPU_CONFIG = """\
evaluate: {gpus: 1}
finetune: {gpus: 1}
presets: {tiny: {train: {gpus: 1}}}
"""


def _profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def _rules() -> set[str]:
    text = "".join(p.read_text() for p in (REPO / "workflow").rglob("*.smk"))
    text += (REPO / "workflow" / "Snakefile").read_text()
    found = re.findall(r"^(?:rule|checkpoint) (\w+):|^use rule \w+ as (\w+)", text, flags=re.M)
    return {own or used for own, used in found}


def _job_resources(log: str) -> dict[str, list[dict[str, str]]]:
    """{rule: [resources of each of its jobs]} from a dry run's job listing."""
    out: dict[str, list[dict[str, str]]] = {}
    job = r"^\s*(?:local)?rule (\w+):\n(.*?)(?=^\s*(?:local)?rule \w+:|\Z)"
    for rule, body in re.findall(job, log, re.M | re.S):
        found = re.search(r"^\s*resources: (.*)$", body, flags=re.M)
        if found:
            pairs = (item.split("=", 1) for item in found.group(1).split(", "))
            out.setdefault(rule, []).append(dict(pairs))
    return out


def test_profile_names_only_rules_of_the_workflow():
    profile, rules = _profile(), _rules()
    named = set(profile["set-resources"]) | set(profile["groups"])
    assert named <= rules, named - rules  # Snakemake ignores a misspelt rule silently
    assert not set(profile["set-resources"]) & CONFIG_SIZED  # the config sizes those


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_requests_grow_with_each_retry(attempt):
    profile = _profile()
    assert profile["retries"] >= 1
    for rule, resources in [("default", profile["default-resources"])] + list(
        profile["set-resources"].items()
    ):
        for name in ("mem_mb", "runtime"):
            value = eval(str(resources[name]), {"attempt": attempt})
            first = eval(str(resources[name]), {"attempt": 1})
            assert value == attempt * first, (rule, name)
            assert first >= (2 if name == "runtime" else 100), (rule, name)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory) -> str:
    """`all` on .test/config.yaml through the profile, dry (no SLURM needed), GPUs asked for."""
    work = make_workdir(tmp_path_factory.mktemp("dry"))
    (work / "gpu.yaml").write_text(GPU_CONFIG)
    res = snakemake(
        work, "--profile", "workflow/profiles/slurm", "-n", "all", configs=("gpu.yaml",)
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return res.stdout + res.stderr


@pytest.mark.e2e
def test_dry_run_requests_the_profile_sizes(dry_run):
    jobs, sizes = _job_resources(dry_run), _profile()["set-resources"]
    for rule, want in sizes.items():
        assert rule in jobs or rule in IMPORT_RULES, rule
        for got in jobs.get(rule, []):
            assert got["mem_mb"] == str(eval(want["mem_mb"], {"attempt": 1})), rule
            assert got["runtime"] == str(eval(want["runtime"], {"attempt": 1})), rule
            extra = want.get("slurm_extra")  # a quoted string: "'--nice=1000'"
            assert got.get("slurm_extra") == (ast.literal_eval(extra) if extra else None), rule


def test_what_pretraining_waits_for_is_not_queued_behind_the_shards():
    sizes = _profile()["set-resources"]
    niced = {rule for rule, want in sizes.items() if "--nice" in want.get("slurm_extra", "")}
    assert {"data_preprocess_shard", "text_books", "synth_contact_sheet"} <= niced
    assert not niced & {"synth", "parse_reports_chunk", "parse_reports_gather"}


@pytest.mark.e2e
def test_gpu_rules_ask_for_the_configured_gpus(dry_run):
    jobs = _job_resources(dry_run)
    for rule in CONFIG_SIZED - {"figure_grounding_overlays"}:  # the overlays are drawn on the CPU
        assert jobs[rule] and all(got["gpu"] == "1" for got in jobs[rule]), rule
    assert all("gpu" not in got for got in jobs["figure_grounding_overlays"])


def _local_rules() -> set[str]:
    text = "".join(p.read_text() for p in (REPO / "workflow").rglob("*.smk"))
    blocks = re.findall(r"^localrules:\n((?:    \w+,\n)+)", text, flags=re.M)
    return {name for block in blocks for name in re.findall(r"\w+", block)}


def test_bookkeeping_tables_and_plots_run_where_snakemake_runs():
    local, rules = _local_rules(), _rules()
    assert local <= rules
    assert {"data_manifest", "data_splits", "data_gather_shards", "pretrain_data"} <= local
    assert {r for r in rules if r.startswith(("table_", "metrics_"))} <= local
    assert {r for r in rules if r.startswith("figure_")} - local == {"figure_grounding_overlays"}
    profile = _profile()
    assert not (set(profile["set-resources"]) | set(profile["groups"])) & local


@pytest.mark.e2e
def test_each_model_is_one_submission_with_its_evaluations(dry_run):
    jobs = _job_resources(dry_run)
    groups = re.split(r"Group job (\w+)", dry_run)[1:]
    models = [  # each group's members are indented; the next top-level job ends it
        re.split(r"^(?:local)?rule \w+:", body, flags=re.M)[0]
        for name, body in zip(groups[::2], groups[1::2], strict=True)
        if name == "model"
    ]
    assert len(models) == len(jobs["pretrain"]) > 1
    for body in models:  # one pretraining run and the evaluations of its model
        runs = set(re.findall(r"--run-dir (\S+)|--out (results/models/\S+)", body))
        assert len({a or b for a, b in runs}) == 1, runs
        rules = set(re.findall(r"^    rule (\w+):", body, flags=re.M))
        assert rules == {"pretrain", "evaluate_zeroshot", "evaluate_grounding", "evaluate_probe"}


def _controller_up() -> bool:
    return subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def cluster():
    """The local SLURM cluster, started by scripts/slurm_local.sh; stopped afterwards only when this
    fixture started it."""
    missing = [tool for tool in ("sbatch", "slurmctld") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} not found): see {SCRIPT}")
    was_up = _controller_up()
    res = subprocess.run(
        ["bash", SCRIPT, "start"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    if res.returncode != 0:  # installed but not startable here (no root, no munge user, ...)
        pytest.skip(f"local SLURM cluster did not start: {(res.stdout + res.stderr)[-1500:]}")
    yield
    if not was_up:
        subprocess.run(["bash", SCRIPT, "stop"], cwd=REPO, check=True, timeout=60)


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """`reports` through the SLURM profile; returns the workdir and Snakemake's log."""
    work = make_workdir(tmp_path_factory.mktemp("slurm"))
    args = ("--profile", "workflow/profiles/slurm", "--jobs", "2", "--slurm-keep-successful-logs")
    res = snakemake(work, *args, "reports")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work, res.stderr


@pytest.fixture(scope="module")
def local_run(cluster, tmp_path_factory):
    """`reports` run locally (no SLURM); needs `cluster` only to be skipped with it."""
    work = make_workdir(tmp_path_factory.mktemp("local"))
    res = snakemake(work, "reports")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return work


@pytest.mark.e2e
@pytest.mark.slurm
def test_jobs_ran_as_slurm_jobs(slurm_run):
    work, log = slurm_run
    job_ids = re.findall(r"has been submitted with SLURM jobid (\d+)", log)
    assert len(job_ids) == 4  # synthcxr, 2 report chunks, gather (the manifest is local)
    for job_id in job_ids:  # slurmctld keeps finished jobs for MinJobAge (300 s)
        info = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
        assert "JobState=COMPLETED" in info.stdout, info.stdout + info.stderr
    logs = work / SLURM_LOGS
    assert {p.name for p in logs.iterdir()} == {f"rule_{rule}" for rule in SLURM_RULES}
    assert len(list(logs.rglob("*.log"))) == 4


@pytest.mark.e2e
@pytest.mark.slurm
def test_slurm_outputs_equal_local_outputs(slurm_run, local_run):
    slurm, local = slurm_run[0] / GATHERED, local_run / GATHERED
    np.testing.assert_array_equal(
        np.load(slurm / "label_matrix.npy"), np.load(local / "label_matrix.npy")
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(slurm / "triplets.parquet"), pd.read_parquet(local / "triplets.parquet")
    )
