# DVC metrics and plot data under results/metrics/ (dvc.yaml `metrics:` and `plots:`, written by
# scripts/dvc_stages.py): the headline numbers of the ablation table (one file per data source and
# task: what `dvc metrics show` lists), the dataset counts of the data stage, per-rule figures of
# the benchmark files of the jobs that write the final outputs of `all`, and the zero-shot ROC
# points per dataset (code: medslip.tables.dvc_metrics; names: medslip.layout). Needs every other
# rule file. Export: METRICS_FINAL_OUTPUTS, DVC_METRICS.

import shlex

from medslip.layout import METRICS_FILES, roc_points_file

METRICS_ROC = roc_points_file("{dataset}")
# Final outputs of the metrics (inputs of rule all).
METRICS_FINAL_OUTPUTS = list(METRICS_FILES.values()) + expand(
    METRICS_ROC, dataset=ZEROSHOT_DATASETS
)
# What dvc.yaml declares as metrics (the other files: `dvc metrics show FILE`).
DVC_METRICS = [METRICS_FILES["headline"]]


# Seconds each, little memory: with a cluster executor they run where Snakemake runs.
localrules:
    dvc_metrics_headline,
    dvc_metrics_data,
    dvc_metrics_benchmarks,
    dvc_metrics_roc,


rule dvc_metrics:
    input:
        METRICS_FINAL_OUTPUTS,


rule dvc_metrics_headline:
    input:
        table_files("ablation")["csv"],
    output:
        directory(METRICS_FILES["headline"]),
    log:
        "results/logs/metrics/headline.log",
    conda:
        "../envs/results.yaml"
    shell:
        "medslip dvc-metrics headline --ablation {input} --out {output} > {log} 2>&1"


rule dvc_metrics_data:
    input:
        expand(
            "results/data/{dataset}/{name}",
            dataset=sorted(DATA_ROOTS),
            name=["split_counts.json", f"shards/{GATHERED['summary']}"],
        ),
    output:
        METRICS_FILES["data"],
    log:
        "results/logs/metrics/data.log",
    conda:
        "../envs/results.yaml"
    params:
        dirs=expand("results/data/{dataset}", dataset=sorted(DATA_ROOTS)),
    shell:
        "medslip dvc-metrics data --data-dirs {params.dirs} --out {output} > {log} 2>&1"


# Inputs by rule: the benchmark files of the jobs that write the final outputs of `all`, as each
# rule file records them (common.smk: final_benchmark).
rule dvc_metrics_benchmarks:
    input:
        **FINAL_BENCHMARKS,
    output:
        METRICS_FILES["benchmarks"],
    log:
        "results/logs/metrics/benchmarks.log",
    conda:
        "../envs/results.yaml"
    params:
        jobs=lambda wildcards, input: " ".join(
            shlex.quote(f"{rule}={f}")
            for rule, files in input.items()
            for f in ([files] if isinstance(files, str) else files)
        ),
    shell:
        "medslip dvc-metrics benchmarks --benchmarks {params.jobs} --out {output} > {log} 2>&1"


rule dvc_metrics_roc:
    input:
        lambda wildcards: [
            f"{run}/{name}"
            for run in zeroshot_runs(wildcards.dataset)
            for name in EVAL_FILES.values()
        ],
    output:
        METRICS_ROC,
    log:
        "results/logs/metrics/roc_{dataset}.log",
    wildcard_constraints:
        dataset="|".join(ZEROSHOT_DATASETS) or "no-dataset",
    conda:
        "../envs/results.yaml"
    params:
        runs=lambda wildcards: " ".join(zeroshot_runs(wildcards.dataset)),
    shell:
        "medslip dvc-metrics roc --runs {params.runs} --out {output} > {log} 2>&1"
