# Fine-tuning: classification and segmentation from every fine-tuned variant x pretraining seed x
# training fraction x fine-tuning seed (results/eval/finetune_{cls,seg}/{dataset}/{variant}/
# seed{seed}/frac{pct}/ft{ft_seed}/, names from medslip.layout). Needs common.smk,
# data.smk and pretrain.smk (and evaluate.smk for nothing but its layout). Jobs get only the
# config they depend on (as inline JSON).

import os
import re

from medslip.layout import EVAL_FILES, FINETUNE_TASKS, finetune_dir
from medslip.layout import RUN_FILES

FINETUNE = config["finetune"]
FINETUNE_VARIANTS = FINETUNE["variants"] or PRETRAIN_VARIANTS
# Datasets the data layer reads (DATA_ROOTS), in config order.
FINETUNE_DATASETS = {
    "cls": [d for d in FINETUNE["cls_datasets"] if d in DATA_ROOTS],
    "seg": [d for d in FINETUNE["seg_datasets"] if d in DATA_ROOTS],
}
# frac{pct}: 0.01 -> 1, 1.0 -> 100 (as the subset_{pct}pct columns of splits.csv).
FINETUNE_PCTS = {f"{f * 100:g}": f for f in FINETUNE["fractions"]}
FINETUNE_OUT = {
    kind: finetune_dir(
        FINETUNE_TASKS[kind],
        "{dataset}",
        "{variant}",
        "{seed}",
        "{pct}",
        "{ft_seed}",
    )
    for kind in FINETUNE_TASKS
}
# Wildcards of the fine-tuning jobs of `all`, by kind.
FINETUNE_JOBS = {
    kind: [
        {"dataset": dataset, "variant": name, "seed": seed, "pct": pct, "ft_seed": ft}
        for dataset in datasets
        for name in FINETUNE_VARIANTS
        for seed in run_seeds(name)
        for pct in FINETUNE_PCTS
        for ft in FINETUNE["seeds"]
    ]
    for kind, datasets in FINETUNE_DATASETS.items()
}
# Final outputs of the fine-tuning stage (inputs of rule all).
FINETUNE_FINAL_OUTPUTS = [
    f"{FINETUNE_OUT[kind].format(**job)}/{name}"
    for kind, jobs in FINETUNE_JOBS.items()
    for job in jobs
    for name in EVAL_FILES.values()
]
FINETUNE_RUN = f"{MODELS}/{{variant}}/seed{{seed}}"
FINETUNE_DATA = "results/data/{dataset}"
# Inputs of every fine-tuning job: the pretrained model and the data-stage files.
FINETUNE_INPUTS = {
    "weights": f"{FINETUNE_RUN}/{RUN_FILES['weights']}",
    "meta": f"{FINETUNE_RUN}/{RUN_FILES['meta']}",
    "manifest": f"{FINETUNE_DATA}/manifest.parquet",
    "splits": f"{FINETUNE_DATA}/splits.csv",
    "summary": f"{FINETUNE_DATA}/shards/summary.json",
    "index": f"{FINETUNE_DATA}/shards/index.parquet",
}


rule finetune_cls:
    input:
        **FINETUNE_INPUTS,
    output:
        predictions=f"{FINETUNE_OUT['cls']}/{EVAL_FILES['predictions']}",
        metrics=f"{FINETUNE_OUT['cls']}/{EVAL_FILES['metrics']}",
    log:
        "results/logs/eval/finetune_cls_{dataset}_{variant}_seed{seed}_frac{pct}_ft{ft_seed}.log",
    benchmark:
        final_benchmark(
            "finetune_cls",
            "results/benchmarks/eval/finetune_cls_{dataset}_{variant}_seed{seed}_frac{pct}_ft{ft_seed}.tsv",
            FINETUNE_JOBS["cls"],
        )
    wildcard_constraints:
        dataset="|".join(FINETUNE_DATASETS["cls"]) or "no-dataset",
        pct="|".join(map(re.escape, FINETUNE_PCTS)),
        ft_seed=r"\d+",
    conda:
        torch_env("../envs/train.yaml", FINETUNE["gpus"])
    threads: max(1, FINETUNE["workers"])
    resources:
        gpu=FINETUNE["gpus"],
        mem_mb=FINETUNE["mem_mb"],
        runtime=FINETUNE["runtime_min"],
    params:
        config=lambda wildcards: config_for("finetune", dataset=wildcards.dataset),
        fraction=lambda wildcards: FINETUNE_PCTS[wildcards.pct],
        run_dir=lambda wildcards, input: os.path.dirname(input.weights),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "medslip finetune cls --config {params.config} --run-dir {params.run_dir}"
        " --data {params.data} --dataset {wildcards.dataset} --fraction {params.fraction}"
        " --ft-seed {wildcards.ft_seed} --out {params.out} > {log} 2>&1"


rule finetune_seg:
    input:
        **FINETUNE_INPUTS,
    output:
        predictions=f"{FINETUNE_OUT['seg']}/{EVAL_FILES['predictions']}",
        metrics=f"{FINETUNE_OUT['seg']}/{EVAL_FILES['metrics']}",
    log:
        "results/logs/eval/finetune_seg_{dataset}_{variant}_seed{seed}_frac{pct}_ft{ft_seed}.log",
    benchmark:
        final_benchmark(
            "finetune_seg",
            "results/benchmarks/eval/finetune_seg_{dataset}_{variant}_seed{seed}_frac{pct}_ft{ft_seed}.tsv",
            FINETUNE_JOBS["seg"],
        )
    wildcard_constraints:
        dataset="|".join(FINETUNE_DATASETS["seg"]) or "no-dataset",
        pct="|".join(map(re.escape, FINETUNE_PCTS)),
        ft_seed=r"\d+",
    conda:
        torch_env("../envs/train.yaml", FINETUNE["gpus"])
    threads: max(1, FINETUNE["workers"])
    resources:
        gpu=FINETUNE["gpus"],
        mem_mb=FINETUNE["mem_mb"],
        runtime=FINETUNE["runtime_min"],
    params:
        config=lambda wildcards: config_for("finetune", dataset=wildcards.dataset),
        fraction=lambda wildcards: FINETUNE_PCTS[wildcards.pct],
        run_dir=lambda wildcards, input: os.path.dirname(input.weights),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "medslip finetune seg --config {params.config} --run-dir {params.run_dir}"
        " --data {params.data} --dataset {wildcards.dataset} --fraction {params.fraction}"
        " --ft-seed {wildcards.ft_seed} --out {params.out} > {log} 2>&1"
