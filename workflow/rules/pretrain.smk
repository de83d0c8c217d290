# Pretraining: the report x image join, then one run per variant x seed
# (results/models/{variant}/seed{seed}/); a published checkpoint (pretrain.external) is imported
# into results/models/{variant}/seed0/ instead. Jobs get only the part of the config they depend on
# (as inline JSON), so changing it reruns exactly them; a rerun resumes from the last checkpoint.
# Needs common.smk and text_books.smk.

import os

from medslip.settings import preset
from medslip.layout import JOIN_FILES, RUN_FILES, MODELS_DIR
from medslip.variants import variant

TRAIN = preset(config)["train"]
PRETRAIN_VARIANTS = config["pretrain"]["variants"]
PRETRAIN_SEEDS = config["pretrain"]["seeds"]
# Variants imported from published checkpoints, and those this workflow trains.
IMPORTED_VARIANTS = [v for v in PRETRAIN_VARIANTS if variant(v).imported]
TRAINED_VARIANTS = [v for v in PRETRAIN_VARIANTS if not variant(v).imported]
MODELS = MODELS_DIR
PRETRAIN_JOIN = f"{MODELS}/pretrain_data"


# Final outputs of the pretraining stage (inputs of rule all).
PRETRAIN_FINAL_OUTPUTS = [
    f"{MODELS}/{name}/seed{seed}/{RUN_FILES[role]}"
    for name in PRETRAIN_VARIANTS
    for seed in run_seeds(name)
    for role in ("weights", "meta")
]


wildcard_constraints:
    variant="|".join(PRETRAIN_VARIANTS),
    seed=r"\d+",


# The report x image join reads tables only: with a cluster executor it runs where Snakemake runs.
localrules:
    pretrain_data,


rule pretrain_data:
    input:
        matrix="results/reports/mimic_cxr/label_matrix.npy",
        uncertain="results/reports/mimic_cxr/uncertain_mask.npy",
        report_ids="results/reports/mimic_cxr/report_ids.txt",
        chexpert="results/reports/mimic_cxr/labels_chexpert.parquet",
        manifest=f"{MIMIC_DATA}/manifest.parquet",
        splits=f"{MIMIC_DATA}/splits.csv",
        index=f"{MIMIC_DATA}/shards/index.parquet",
    output:
        expand(f"{PRETRAIN_JOIN}/{{name}}", name=JOIN_FILES.values()),
    log:
        "results/logs/pretrain/pretrain_data.log",
    conda:
        "../envs/train.yaml"
    params:
        reports=lambda wildcards, input: os.path.dirname(input.matrix),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "medslip pretrain-data --reports {params.reports} --data {params.data}"
        " --out {params.out} > {log} 2>&1"


rule pretrain:
    input:
        REPORT_FINAL_OUTPUTS,
        f"{MIMIC_DATA}/splits.csv",
        f"{MIMIC_DATA}/shards/index.parquet",
        matrix="results/reports/mimic_cxr/label_matrix.npy",
        manifest=f"{MIMIC_DATA}/manifest.parquet",
        join=f"{PRETRAIN_JOIN}/{JOIN_FILES['images']}",
        books=TEXT_BOOKS,
        embeddings=lambda wildcards: (
            REPORT_EMBEDDINGS
            if variant(wildcards.variant).needs_report_embeddings
            else []
        ),
    output:
        weights=f"{MODELS}/{{variant}}/seed{{seed}}/{RUN_FILES['weights']}",
        meta=f"{MODELS}/{{variant}}/seed{{seed}}/{RUN_FILES['meta']}",
    log:
        "results/logs/pretrain/{variant}_seed{seed}.log",
    benchmark:
        final_benchmark(
            "pretrain",
            "results/benchmarks/pretrain/{variant}_seed{seed}.tsv",
            [
                {"variant": name, "seed": seed}
                for name in TRAINED_VARIANTS
                for seed in PRETRAIN_SEEDS
            ],
        )
    wildcard_constraints:
        variant="|".join(TRAINED_VARIANTS) or "no-variant",
    conda:
        torch_env("../envs/train.yaml", TRAIN["gpus"])
    # torch's threads and one CPU per data loader worker (the SLURM --cpus-per-task)
    threads: TRAIN["cpu_threads"] + TRAIN["workers"]
    resources:
        gpu=TRAIN["gpus"],
        mem_mb=TRAIN["mem_mb"],
        runtime=TRAIN["runtime_min"],
    params:
        config=lambda wildcards: config_for("pretrain", variant=wildcards.variant),
        launcher=(
            f"torchrun --standalone --nproc_per_node {TRAIN['gpus']} -m medslip.cli"
            if TRAIN["gpus"] > 1
            else "medslip"
        ),
        embeddings=lambda wildcards, input: (
            f"--report-embeddings {input.embeddings}" if input.embeddings else ""
        ),
        reports=lambda wildcards, input: os.path.dirname(input.matrix),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        join=lambda wildcards, input: os.path.dirname(input.join),
        run_dir=lambda wildcards, output: os.path.dirname(output.weights),
        torch_threads=lambda wildcards, threads: max(1, threads - TRAIN["workers"]),
    shell:
        "{params.launcher} pretrain --config {params.config} --variant {wildcards.variant}"
        " --seed {wildcards.seed} --data {params.data} --reports {params.reports}"
        " --join {params.join} --books {input.books} {params.embeddings}"
        " --threads {params.torch_threads} --out {params.run_dir} > {log} 2>&1"


rule import_checkpoint:
    input:
        checkpoint=lambda wildcards: config["pretrain"]["external"][wildcards.variant],
        books=TEXT_BOOKS_OFFICIAL,
    output:
        weights=f"{MODELS}/{{variant}}/seed{IMPORTED_SEED}/{RUN_FILES['weights']}",
        meta=f"{MODELS}/{{variant}}/seed{IMPORTED_SEED}/{RUN_FILES['meta']}",
    log:
        "results/logs/pretrain/{variant}_import.log",
    benchmark:
        final_benchmark(
            "import_checkpoint",
            "results/benchmarks/pretrain/{variant}_import.tsv",
            [{"variant": name} for name in IMPORTED_VARIANTS],
        )
    wildcard_constraints:
        variant="|".join(IMPORTED_VARIANTS) or "no-variant",
    conda:
        "../envs/train.yaml"
    params:
        run_dir=lambda wildcards, output: os.path.dirname(output.weights),
    shell:
        "medslip import-checkpoint {input.checkpoint:q} --variant {wildcards.variant}"
        " --books {input.books} --out {params.run_dir} > {log} 2>&1"
