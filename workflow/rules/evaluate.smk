# Evaluation: zero-shot classification and grounding of every pretrained variant x seed on the
# published splits, and the disentanglement probe on the SynthCXR ground truth of
# evaluate.probe.dataset's test split when SynthCXR serves it
# (results/eval/{task}/{dataset}/{variant}/seed{seed}/, names from medslip.layout).
# Needs common.smk, data.smk and pretrain.smk. Jobs get only the config they depend on (as
# inline JSON).

import os

from medslip.layout import (
    EVAL_FILES,
    EVAL_TASKS,
    GROUNDING_CONTROLS,
    control_dir,
    eval_dir,
)
from medslip.layout import RUN_FILES

EVAL = config["evaluate"]
EVAL_VARIANTS = EVAL["variants"] or PRETRAIN_VARIANTS
# Datasets the data layer reads (DATA_ROOTS), in config order.
ZEROSHOT_DATASETS = [d for d in EVAL["zeroshot_datasets"] if d in DATA_ROOTS]
GROUNDING_DATASETS = [d for d in EVAL["grounding_datasets"] if d in DATA_ROOTS]
EVAL_DATASETS = {"zeroshot": ZEROSHOT_DATASETS, "grounding": GROUNDING_DATASETS}
EVAL_RUN = f"{MODELS}/{{variant}}/seed{{seed}}"
EVAL_DATA = "results/data/{dataset}"
EVAL_OUT = {
    task: eval_dir(task, "{dataset}", "{variant}", "{seed}") for task in EVAL_TASKS
}
# Final outputs of the evaluation stage (inputs of rule all).
EVAL_FINAL_OUTPUTS = [
    f"{eval_dir(task, **job)}/{name}"
    for task, datasets in EVAL_DATASETS.items()
    for job in eval_jobs(datasets)
    for name in EVAL_FILES.values()
]

# Model-free grounding controls of every grounding dataset (medslip.evaluate.controls), laid
# out as model runs, so the tables list them beside the models.
CONTROL_FILES = [
    f"{control_dir('{dataset}', control)}/{name}"
    for control in GROUNDING_CONTROLS
    for name in EVAL_FILES.values()
]
EVAL_FINAL_OUTPUTS += expand(CONTROL_FILES, dataset=GROUNDING_DATASETS)


# The probe runs where SynthCXR serves its dataset (the ground truth exists); else nothing.
PROBE = EVAL["probe"]
PROBE_DATASETS = [d for d in [PROBE["dataset"]] if d in synthcxr_datasets()]
PROBE_TRUTH = "results/synthcxr/ground_truth/{dataset}"
# Final outputs of the probe (inputs of rule all; empty when the dataset is real data).
PROBE_FINAL_OUTPUTS = [
    f"{eval_dir('probe', **job)}/{name}"
    for job in eval_jobs(PROBE_DATASETS)
    for name in EVAL_FILES.values()
]


# Inputs of every evaluation job: the model and the data-stage files (and the model's text
# books, books_for(variant)).
EVAL_INPUTS = {
    "weights": f"{EVAL_RUN}/{RUN_FILES['weights']}",
    "meta": f"{EVAL_RUN}/{RUN_FILES['meta']}",
    "manifest": f"{EVAL_DATA}/manifest.parquet",
    "splits": f"{EVAL_DATA}/splits.csv",
    "summary": f"{EVAL_DATA}/shards/summary.json",
    "index": f"{EVAL_DATA}/shards/index.parquet",
}


rule evaluate_zeroshot:
    input:
        **EVAL_INPUTS,
        books=lambda wildcards: books_for(wildcards.variant),
    output:
        predictions=f"{EVAL_OUT['zeroshot']}/{EVAL_FILES['predictions']}",
        metrics=f"{EVAL_OUT['zeroshot']}/{EVAL_FILES['metrics']}",
    log:
        "results/logs/eval/zeroshot_{dataset}_{variant}_seed{seed}.log",
    benchmark:
        final_benchmark(
            "evaluate_zeroshot",
            "results/benchmarks/eval/zeroshot_{dataset}_{variant}_seed{seed}.tsv",
            eval_jobs(ZEROSHOT_DATASETS),
        )
    wildcard_constraints:
        dataset="|".join(ZEROSHOT_DATASETS),
    conda:
        torch_env("../envs/train.yaml", EVAL["gpus"])
    threads: max(1, EVAL["workers"])
    resources:
        gpu=EVAL["gpus"],
        mem_mb=EVAL["mem_mb"],
        runtime=EVAL["runtime_min"],
    params:
        config=lambda wildcards: config_for(
            "evaluate_zeroshot", dataset=wildcards.dataset
        ),
        run_dir=lambda wildcards, input: os.path.dirname(input.weights),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "medslip evaluate zeroshot --config {params.config} --run-dir {params.run_dir}"
        " --books {input.books} --data {params.data} --dataset {wildcards.dataset}"
        " --out {params.out} > {log} 2>&1"


rule evaluate_grounding:
    input:
        **EVAL_INPUTS,
        books=lambda wildcards: books_for(wildcards.variant),
        exact=lambda wildcards: (
            f"results/synthcxr/ground_truth/{wildcards.dataset}"
            if wildcards.dataset in synthcxr_datasets()
            else []
        ),
    output:
        predictions=f"{EVAL_OUT['grounding']}/{EVAL_FILES['predictions']}",
        metrics=f"{EVAL_OUT['grounding']}/{EVAL_FILES['metrics']}",
    log:
        "results/logs/eval/grounding_{dataset}_{variant}_seed{seed}.log",
    benchmark:
        final_benchmark(
            "evaluate_grounding",
            "results/benchmarks/eval/grounding_{dataset}_{variant}_seed{seed}.tsv",
            eval_jobs(GROUNDING_DATASETS),
        )
    wildcard_constraints:
        dataset="|".join(GROUNDING_DATASETS),
    conda:
        torch_env("../envs/train.yaml", EVAL["gpus"])
    threads: max(1, EVAL["workers"])
    resources:
        gpu=EVAL["gpus"],
        mem_mb=EVAL["mem_mb"],
        runtime=EVAL["runtime_min"],
    params:
        config=lambda wildcards: config_for(
            "evaluate_grounding", dataset=wildcards.dataset
        ),
        run_dir=lambda wildcards, input: os.path.dirname(input.weights),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        exact=lambda wildcards, input: (
            f"--exact-truth {input.exact}" if input.exact else ""
        ),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "medslip evaluate grounding --config {params.config} --run-dir {params.run_dir}"
        " --books {input.books} --data {params.data} --dataset {wildcards.dataset}"
        " {params.exact} --out {params.out} > {log} 2>&1"


rule evaluate_grounding_controls:
    input:
        manifest=f"{EVAL_DATA}/manifest.parquet",
        splits=f"{EVAL_DATA}/splits.csv",
        summary=f"{EVAL_DATA}/shards/summary.json",
        index=f"{EVAL_DATA}/shards/index.parquet",
        exact=lambda wildcards: (
            f"results/synthcxr/ground_truth/{wildcards.dataset}"
            if wildcards.dataset in synthcxr_datasets()
            else []
        ),
    output:
        CONTROL_FILES,
    log:
        "results/logs/eval/grounding_controls_{dataset}.log",
    benchmark:
        final_benchmark(
            "evaluate_grounding_controls",
            "results/benchmarks/eval/grounding_controls_{dataset}.tsv",
            [{"dataset": dataset} for dataset in GROUNDING_DATASETS],
        )
    wildcard_constraints:
        dataset="|".join(GROUNDING_DATASETS) or "no-dataset",
    conda:
        "../envs/train.yaml"
    threads: 1
    resources:
        mem_mb=EVAL["mem_mb"],
        runtime=EVAL["runtime_min"],
    params:
        config=lambda wildcards: config_for(
            "evaluate_grounding_controls", dataset=wildcards.dataset
        ),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        exact=lambda wildcards, input: (
            f"--exact-truth {input.exact}" if input.exact else ""
        ),
        # the evaluation root: control_dir's {root}/grounding/{dataset}/control_*/seed0/file
        root=lambda wildcards, output: os.path.dirname(
            os.path.dirname(
                os.path.dirname(os.path.dirname(os.path.dirname(output[0])))
            )
        ),
    shell:
        "medslip evaluate controls --config {params.config} --data {params.data}"
        " --dataset {wildcards.dataset} {params.exact} --out {params.root} > {log} 2>&1"


rule evaluate_probe:
    input:
        **EVAL_INPUTS,
        books=lambda wildcards: books_for(wildcards.variant),
        truth=PROBE_TRUTH,
    output:
        predictions=f"{EVAL_OUT['probe']}/{EVAL_FILES['predictions']}",
        metrics=f"{EVAL_OUT['probe']}/{EVAL_FILES['metrics']}",
    log:
        "results/logs/eval/probe_{dataset}_{variant}_seed{seed}.log",
    benchmark:
        final_benchmark(
            "evaluate_probe",
            "results/benchmarks/eval/probe_{dataset}_{variant}_seed{seed}.tsv",
            eval_jobs(PROBE_DATASETS),
        )
    wildcard_constraints:
        dataset="|".join(PROBE_DATASETS) or "no-dataset",
    conda:
        torch_env("../envs/train.yaml", EVAL["gpus"])
    threads: max(1, EVAL["workers"])
    resources:
        gpu=EVAL["gpus"],
        mem_mb=EVAL["mem_mb"],
        runtime=EVAL["runtime_min"],
    params:
        config=lambda wildcards: config_for("evaluate_probe"),
        run_dir=lambda wildcards, input: os.path.dirname(input.weights),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    shell:
        "medslip evaluate probe --config {params.config} --run-dir {params.run_dir}"
        " --books {input.books} --data {params.data} --truth {input.truth}"
        " --dataset {wildcards.dataset} --out {params.out} > {log} 2>&1"
