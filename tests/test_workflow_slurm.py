"""The SLURM profile (workflow/profiles/slurm): its requests in a dry run (no SLURM needed), those
of config/paper.yaml too (what each model job and its group ask, as submitted), and on a real
one-node cluster on localhost (scripts/slurm_local.sh) the `reports` stage goes through sbatch and
gives the outputs of a local run (skipped where SLURM is not installed)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from medslip.config import validate_config
from tests._workflow import make_workdir, snakemake
from tests.conftest import REPO

SCRIPT = "scripts/slurm_local.sh"
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
SLURM_RULES = {"synth", "parse_reports_chunk", "parse_reports_gather"}
GATHERED = "results/reports/mimic_cxr"
SLURM_LOGS = "results/logs/slurm"
EVALUATIONS = {"evaluate_zeroshot", "evaluate_grounding", "evaluate_probe"}
"""Members of group `model` with the pretraining: they run on its GPUs (the profile gives none)."""
CONFIG_SIZED = {"pretrain", "finetune_cls", "finetune_seg", "figure_grounding_overlays"}
CONFIG_SIZED |= EVALUATIONS
"""Rules whose gpu/mem_mb/runtime come from the config (they grow with the model preset)."""
IMPORT_RULES = {"import_checkpoint", "text_books_official"}
"""Rules of imported checkpoints only, which .test/config.yaml has none of."""
MAX_RUNTIME = 48 * 60
"""A common limit of SLURM partitions (minutes)."""
PAPER = REPO / "config" / "paper.yaml"
SUBMITTED = """\
import json, sys
from snakemake.cli import main
from snakemake.jobs import GroupJob
from snakemake.resources import GroupResources
log_info = GroupJob.log_info
def with_submission(self):
    log_info(self)
    # What a cluster executor submits (a dry run merges the members as for a local run).
    submitted = GroupResources.basic_layered(
        self.toposorted, self.global_resources, run_local=False,
        additive_resources=["runtime"], sortby=["runtime"],
    )
    members = [
        {"rule": job.rule.name, "threads": job.threads}
        | {k: v for k, v in job.resources.items() if isinstance(v, int)}
        for job in self.jobs
    ]
    line = json.dumps({"members": members, "submits": submitted})
    print(f"group {self.groupid}: {line}", file=sys.stderr, flush=True)
GroupJob.log_info = with_submission
sys.argv[0] = "snakemake"
main()
"""
"""Snakemake's CLI, printing each group job's members and what it asks the cluster for."""
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
    """{rule: [resources of each of its jobs, with its threads]} from a dry run's job listing."""
    out: dict[str, list[dict[str, str]]] = {}
    job = r"^\s*(?:local)?rule (\w+):\n(.*?)(?=^\s*(?:local)?rule \w+:|\Z)"
    for rule, body in re.findall(job, log, re.M | re.S):
        found = re.search(r"^\s*resources: (.*)$", body, flags=re.M)
        if found:
            pairs = dict(item.split("=", 1) for item in found.group(1).split(", "))
            threads = re.search(r"^\s*threads: (\d+)$", body, flags=re.M)
            pairs["threads"] = threads.group(1) if threads else "1"
            out.setdefault(rule, []).append(pairs)
    return out


def _group_submissions(log: str) -> list[dict]:
    """``{"members": [{rule, threads, resources...}], "submits": {...}}`` of each group job of a
    dry run through :data:`SUBMITTED`."""
    return [json.loads(line) for line in re.findall(r"^group model: (.*)$", log, flags=re.M)]


def test_profile_names_only_rules_of_the_workflow():
    profile, rules = _profile(), _rules()
    named = set(profile["set-resources"]) | set(profile["groups"])
    assert named <= rules, named - rules  # Snakemake ignores a misspelt rule silently
    sized = set(profile["set-resources"]) & CONFIG_SIZED  # the config sizes those...
    assert sized == EVALUATIONS <= {r for r, g in profile["groups"].items() if g == "model"}
    assert all(profile["set-resources"][r] == {"gpu": 0} for r in sized)  # ...but their GPU


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_requests_grow_with_each_retry(attempt):
    profile = _profile()
    assert profile["retries"] >= 1
    sized = [(r, s) for r, s in profile["set-resources"].items() if r not in CONFIG_SIZED]
    for rule, resources in [("default", profile["default-resources"]), *sized]:
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
        if rule in CONFIG_SIZED:
            continue
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
    for rule in {"pretrain", "finetune_cls", "finetune_seg"}:
        assert jobs[rule] and all(got["gpu"] == "1" for got in jobs[rule]), rule
    for rule in EVALUATIONS:  # they run on the GPU of their group's pretraining
        assert jobs[rule] and all(got["gpu"] == "0" for got in jobs[rule]), rule
    assert all("gpu" not in got for got in jobs["figure_grounding_overlays"])  # drawn on the CPU


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


def paper_config(data: Path) -> dict:
    """config/paper.yaml with a folder under ``data`` for every dataset path (they must exist)."""
    config = yaml.safe_load(PAPER.read_text())
    for name, root in config["datasets"].items():
        assert root.startswith("/path/to/"), f"{PAPER.name}: datasets.{name} is not a placeholder"
        (data / name).mkdir(parents=True)
        config["datasets"][name] = str(data / name)
    return config


@pytest.fixture(scope="module")
def paper_dry_run(tmp_path_factory) -> tuple[dict, str]:
    """config/paper.yaml (effective, with real folders for its datasets) and `all` through the
    SLURM profile as it is (its `cores`), dry, with what each group job submits."""
    work = make_workdir(tmp_path_factory.mktemp("paper"))
    config = paper_config(work / "data")
    (work / "paper.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-c", SUBMITTED, "--profile", "workflow/profiles/slurm", "-n", "all"]
    res = subprocess.run(
        [*cmd, "--configfile", "paper.yaml"], cwd=work, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    return validate_config(config), res.stdout + res.stderr


def test_the_paper_config_is_the_papers_run_and_check_config_lists_what_to_edit(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "medslip.cli", "check-config", str(PAPER)],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0
    datasets = yaml.safe_load(PAPER.read_text())["datasets"]
    for name, root in datasets.items():  # every path to edit, one line each
        assert f"datasets.{name}: input path '{root}' does not exist" in res.stderr, name
    config = validate_config(paper_config(tmp_path))
    assert config["preset"] == "paper" and config["text"]["pooling"] == "cls"
    assert config["text"]["encoder"] == "emilyalsentzer/Bio_ClinicalBERT"
    assert config["pretrain"]["seeds"] == [0, 1, 2] and config["finetune"]["variants"] is None
    assert config["finetune"]["fractions"] == [0.01, 0.1, 1.0]


@pytest.mark.e2e
def test_paper_jobs_ask_for_their_gpus_cpus_memory_and_at_most_48_hours(paper_dry_run):
    config, log = paper_dry_run
    train = config["presets"]["paper"]["train"]
    jobs = _job_resources(log)
    assert len(jobs["pretrain"]) == 7 * 3  # variants x seeds
    for got in jobs["pretrain"]:
        assert got["gpu"] == str(train["gpus"]) and got["mem_mb"] == str(train["mem_mb"])
        assert got["threads"] == str(train["cpu_threads"] + train["workers"])
    assert len(re.findall(rf"medslip pretrain .* --threads {train['cpu_threads']} ", log)) == 21
    for rule in ("finetune_cls", "finetune_seg"):
        assert jobs[rule] and all(got["gpu"] == "1" for got in jobs[rule]), rule
    runtimes = {rule: max(int(j["runtime"]) for j in got) for rule, got in jobs.items()}
    assert max(runtimes.values()) <= MAX_RUNTIME, runtimes


@pytest.mark.e2e
def test_paper_model_job_asks_for_what_its_members_need_together(paper_dry_run):
    """Each group job: the pretraining's GPUs; the larger of the pretraining's CPUs and memory and
    those of its evaluations side by side; the pretraining's runtime plus the longest
    evaluation's (not the sum of all), within 48 h."""
    _, log = paper_dry_run
    groups = _group_submissions(log)
    assert len(groups) == 21, len(groups)  # one per variant x seed
    for group in groups:
        (pretrain,) = [m for m in group["members"] if m["rule"] == "pretrain"]
        evaluations = [m for m in group["members"] if m is not pretrain]
        assert {m["rule"] for m in evaluations} <= EVALUATIONS
        assert len(evaluations) == 7  # 4 zero-shot, 3 grounding (no probe on real NIH)
        submitted = group["submits"]
        assert submitted["gpu"] == pretrain["gpu"] == 1
        together = {k: sum(m[k] for m in evaluations) for k in ("threads", "mem_mb")}
        assert submitted["_cores"] == max(pretrain["threads"], together["threads"])
        assert submitted["mem_mb"] == max(pretrain["mem_mb"], together["mem_mb"])
        longest = max(m["runtime"] for m in evaluations)
        assert submitted["runtime"] == pretrain["runtime"] + longest <= MAX_RUNTIME


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
