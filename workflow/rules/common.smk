# Config validation, how jobs run medslip, and input helpers shared by all rule files.
# Everything imported here and in the other rule files is standard library, Snakemake, or one of
# medslip's light name modules (tests/test_workflow_parse.py parses the workflow without numpy).
import os
import shlex
import shutil
import sys
from pathlib import Path

from snakemake.logging import logger
from snakemake.utils import validate

from medslip.config import validate_config
from medslip.job_config import job_config_json
from medslip.layout import EVAL_FILES, EVAL_ROOT, IMPORTED_SEED, eval_dir
from medslip.datasets import SYNTHCXR_DATASETS, data_sources
from medslip.variants import variant

# One schema (workflow/schemas/config.schema.yaml), checked twice: by medslip first (one line per
# problem naming the key, input paths that must exist; `medslip check-config` runs the same), then
# by Snakemake's own validate (defaults set), the check Snakemake's tooling and catalog expect.
validate_config(config)
validate(config, "../schemas/config.schema.yaml")


# Every job runs medslip from this workflow's source tree: PYTHONPATH names it first, then the
# caller's (Snakemake clears that in conda jobs; elsewhere it may hold medslip's dependencies, as
# on a machine given them as wheels) and `medslip` is `python -m medslip.cli`. The interpreter:
# in a per-rule conda env (`--sdm conda` activates it, so CONDA_PREFIX differs from Snakemake's
# own) the env's python, else the one that runs Snakemake (its environment holds medslip's
# dependencies; nothing needs to be on PATH). Snakemake formats the prefix: braces are doubled.
def _shell_quoted(value):
    return shlex.quote(value).replace("{", "{{").replace("}", "}}")


shell.prefix(
    f"set -euo pipefail; export PYTHONPATH={_shell_quoted(MEDSLIP_SRC)}"
    f"${{{{PYTHONPATH:+:$PYTHONPATH}}}}; medslip() {{{{ "
    f'if [ "${{{{CONDA_PREFIX:-}}}}" != {_shell_quoted(os.environ.get("CONDA_PREFIX", ""))} ]; '
    'then python -m medslip.cli "$@"; '
    f'else {_shell_quoted(sys.executable)} -m medslip.cli "$@"; fi; }}}}; '
)


FINAL_BENCHMARKS = {}
"""Rule name -> the benchmark files of its jobs that write final outputs of `all` (filled by
final_benchmark as the rule files are read; dvc_metrics.smk reads it)."""


def final_benchmark(rule, pattern, jobs=({},)):
    """``pattern``, the ``benchmark:`` of rule ``rule``, whose jobs that write final outputs of
    `all` have the wildcard dicts ``jobs`` (one job without wildcards by default): their
    benchmark files are recorded in FINAL_BENCHMARKS."""
    files = sorted({pattern.format(**job) for job in jobs})
    if files:
        FINAL_BENCHMARKS[rule] = files
    return pattern


def torch_env(cpu_env, gpus):
    """The conda env of a job that runs a model, by the GPUs it requests: none, ``cpu_env``
    (conda-forge's CPU build of PyTorch); else envs/gpu.yaml (the CUDA build)."""
    return "../envs/gpu.yaml" if gpus else cpu_env


SYNTH_DATASETS = list(SYNTHCXR_DATASETS)


wildcard_constraints:
    dataset="|".join(SYNTH_DATASETS),


def synthcxr_datasets():
    """Datasets whose root is null in config, i.e. served by the SynthCXR tree."""
    return [d for d in SYNTH_DATASETS if config["datasets"][d] is None]


def dataset_root(name):
    """Root of an official-format dataset tree: the configured download or the SynthCXR tree."""
    root = config["datasets"][name]
    return root if root is not None else f"results/synthcxr/{name}"


def mimic_reports_root():
    """Root the MIMIC manifest's report paths are relative to (datasets.mimic_cxr_reports, or
    the MIMIC-CXR-JPG root)."""
    return config["datasets"]["mimic_cxr_reports"] or dataset_root("mimic_cxr_jpg")


def synthcxr_outputs():
    """Everything SynthCXR produces for the datasets it serves (and its contact sheet when it
    serves MIMIC-CXR-JPG)."""
    datasets = synthcxr_datasets()
    sheet = (
        ["results/figures/synthcxr_examples.png"] if "mimic_cxr_jpg" in datasets else []
    )
    return expand("results/synthcxr/{dataset}", dataset=datasets) + sheet


def config_for(job, **wildcards):
    """The part of the config job kind ``job`` reads (medslip.job_config: derived from the
    settings its command builds), as shell-quoted JSON for the job's ``--config``."""
    return shlex.quote(job_config_json(config, job, **wildcards))


def root_tables(wildcards):
    """The files directly in a configured dataset root: its official tables (and readme), so
    that editing one in place, which leaves the root directory's time alone, reruns the reader.
    None for a SynthCXR tree: its rule writes it whole."""
    root = config["datasets"][wildcards.source]
    return sorted(str(p) for p in Path(root).iterdir() if p.is_file()) if root else []


def run_seeds(name):
    """The seed levels of a variant's runs: pretrain.seeds, or seed0 for an imported checkpoint
    (call it after pretrain.smk is included)."""
    return [IMPORTED_SEED] if variant(name).imported else PRETRAIN_SEEDS


def books_for(name):
    """The text books a variant's model reads: the official ones for an imported checkpoint
    (call it after text_books.smk is included)."""
    return TEXT_BOOKS_OFFICIAL if variant(name).imported else TEXT_BOOKS


def eval_metrics(*tasks):
    """metrics.json files of the evaluation stage whose task level is one of ``tasks`` (call
    it after evaluate.smk and finetune.smk are included)."""
    files = EVAL_FINAL_OUTPUTS + PROBE_FINAL_OUTPUTS + FINETUNE_FINAL_OUTPUTS
    return [
        f
        for f in files
        if os.path.basename(f) == EVAL_FILES["metrics"]
        and any(f.startswith(f"{EVAL_ROOT}/{task}/") for task in tasks)
    ]


def run_metrics(wildcards):
    """metrics.json of every evaluation and fine-tuning of one run (variant x seed; call it
    after evaluate.smk and finetune.smk are included)."""
    run = f"/{wildcards.variant}/seed{wildcards.seed}/"
    return [
        f
        for f in EVAL_FINAL_OUTPUTS + PROBE_FINAL_OUTPUTS + FINETUNE_FINAL_OUTPUTS
        if os.path.basename(f) == EVAL_FILES["metrics"] and run in f
    ]


def eval_jobs(datasets):
    """Wildcards of the evaluation jobs of every evaluated variant x pretraining seed on
    ``datasets`` (call it after evaluate.smk defines EVAL_VARIANTS)."""
    return [
        {"dataset": dataset, "variant": name, "seed": seed}
        for dataset in datasets
        for name in EVAL_VARIANTS
        for seed in run_seeds(name)
    ]


def zeroshot_runs(dataset):
    """Evaluation dirs of every evaluated variant x pretraining seed on ``dataset`` (call it
    after evaluate.smk is included)."""
    return [eval_dir("zeroshot", **job) for job in eval_jobs([dataset])]


def stale_scatter_files():
    """Outputs, logs and benchmarks of scatter jobs whose index the config no longer has: the
    preprocessing shards at or above data.n_shards and the report chunks at or above
    reports.n_chunks, left by a run with more of them (patterns from the rules themselves,
    matched with glob_wildcards)."""
    scatters = (
        (rules.data_preprocess_shard, "shard", config["data"]["n_shards"]),
        (rules.parse_reports_chunk, "chunk", config["reports"]["n_chunks"]),
    )
    stale = set()
    for rule, name, count in scatters:
        for pattern in [*rule.output, *rule.log, rule.benchmark]:
            found = glob_wildcards(pattern)._asdict()
            for values in zip(*found.values()):
                fields = dict(zip(found, values))
                if fields[name].isdigit() and int(fields[name]) >= count:
                    stale.add(pattern.format(**fields))
    return sorted(stale)


def remove_stale_scatter_files():
    """Remove :func:`stale_scatter_files` (after a successful run), naming each."""
    for path in stale_scatter_files():
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        logger.info(f"removed {path}: left by a run with more shards or report chunks")
