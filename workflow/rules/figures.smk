# Figures: PNG (150 dpi) + PDF twins under results/figures/ (names from medslip.layout),
# one rule per figure kind, from the evaluation outputs (evaluate.smk), the pretraining logs
# (pretrain.smk) and the result tables (tables.smk, names from medslip.layout). Needs
# common.smk, pretrain.smk, evaluate.smk and tables.smk. Export: FIGURES_FINAL_OUTPUTS.

import os

from medslip.layout import EVAL_FILES, eval_dir
from medslip.layout import FORMATS, figure_files, figure_name
from medslip.layout import table_files
from medslip.layout import RUN_FILES

FIGURES_CONFIG = config["figures"]
# The grounding overlays: one variant, its first pretraining seed, one grounding dataset; left
# out when no grounding dataset is evaluated.
OVERLAY = {
    "dataset": FIGURES_CONFIG["overlay_dataset"],
    "variant": FIGURES_CONFIG["overlay_variant"],
    "seed": run_seeds(FIGURES_CONFIG["overlay_variant"])[0],
}
FIGURE_NAMES = [figure_name("roc", d) for d in ZEROSHOT_DATASETS] + [
    figure_name(kind)
    for kind in (
        "grounding_overlays",
        "label_efficiency",
        "pretraining_curves",
        "ablation",
        "disentanglement",
    )
    if kind != "grounding_overlays" or GROUNDING_DATASETS
]
# Final outputs of the figures stage (inputs of rule all).
FIGURES_FINAL_OUTPUTS = [
    figure_files(name)[fmt] for name in FIGURE_NAMES for fmt in FORMATS
]
FIGURE_RESOURCES = {
    "mem_mb": FIGURES_CONFIG["mem_mb"],
    "runtime": FIGURES_CONFIG["runtime_min"],
}


# Plots of finished results (at most 11 s and 262 MB on the default run): with a cluster executor
# they run where Snakemake runs. The grounding overlays load a model and stay a cluster job.
localrules:
    figure_roc,
    figure_label_efficiency,
    figure_pretraining_curves,
    figure_ablation,
    figure_disentanglement,


rule figure_roc:
    input:
        predictions=lambda wildcards: [
            f"{run}/{EVAL_FILES['predictions']}"
            for run in zeroshot_runs(wildcards.dataset)
        ],
        metrics=lambda wildcards: [
            f"{run}/{EVAL_FILES['metrics']}"
            for run in zeroshot_runs(wildcards.dataset)
        ],
    output:
        png=report(
            figure_files(figure_name("roc", "{dataset}"))["png"],
            caption="../report/figures/roc.rst",
            category="Zero-shot",
            subcategory="{dataset}",
        ),
        pdf=figure_files(figure_name("roc", "{dataset}"))["pdf"],
    log:
        "results/logs/figures/roc_{dataset}.log",
    benchmark:
        final_benchmark(
            "figure_roc",
            "results/benchmarks/figures/roc_{dataset}.tsv",
            [{"dataset": dataset} for dataset in ZEROSHOT_DATASETS],
        )
    wildcard_constraints:
        dataset="|".join(ZEROSHOT_DATASETS) or "no-dataset",
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        **FIGURE_RESOURCES,
    params:
        runs=lambda wildcards: " ".join(zeroshot_runs(wildcards.dataset)),
    shell:
        "medslip figure roc --runs {params.runs} --out {output.png} > {log} 2>&1"


rule figure_grounding_overlays:
    input:
        **{role: path.format(**OVERLAY) for role, path in EVAL_INPUTS.items()},
        books=books_for(OVERLAY["variant"]),
        grounding=f"{eval_dir('grounding', **OVERLAY)}/{EVAL_FILES['metrics']}",
    output:
        png=report(
            figure_files(figure_name("grounding_overlays"))["png"],
            caption="../report/figures/grounding_overlays.rst",
            category="Zero-shot",
        ),
        pdf=figure_files(figure_name("grounding_overlays"))["pdf"],
    log:
        "results/logs/figures/grounding_overlays.log",
    benchmark:
        final_benchmark(
            "figure_grounding_overlays",
            "results/benchmarks/figures/grounding_overlays.tsv",
            [{}] if GROUNDING_DATASETS else [],
        )
    conda:
        torch_env("../envs/figures.yaml", EVAL["gpus"])
    threads: 1
    resources:
        mem_mb=EVAL["mem_mb"],
        runtime=FIGURE_RESOURCES["runtime"],
    params:
        config=lambda wildcards: config_for(
            "figure_grounding_overlays", dataset=OVERLAY["dataset"]
        ),
        dataset=OVERLAY["dataset"],
        run_dir=lambda wildcards, input: os.path.dirname(input.weights),
        data=lambda wildcards, input: os.path.dirname(input.manifest),
    shell:
        "medslip figure grounding_overlays --config {params.config}"
        " --run-dir {params.run_dir} --books {input.books} --data {params.data}"
        " --dataset {params.dataset} --metrics {input.grounding} --device cpu"
        " --out {output.png} > {log} 2>&1"


rule figure_label_efficiency:
    input:
        cls=table_files("finetune_classification")["csv"],
        seg=table_files("finetune_segmentation")["csv"],
    output:
        png=report(
            figure_files(figure_name("label_efficiency"))["png"],
            caption="../report/figures/label_efficiency.rst",
            category="Fine-tuning",
        ),
        pdf=figure_files(figure_name("label_efficiency"))["pdf"],
    log:
        "results/logs/figures/label_efficiency.log",
    benchmark:
        final_benchmark(
            "figure_label_efficiency",
            "results/benchmarks/figures/label_efficiency.tsv",
        )
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        **FIGURE_RESOURCES,
    shell:
        "medslip figure label_efficiency --cls {input.cls} --seg {input.seg}"
        " --out {output.png} > {log} 2>&1"


rule figure_pretraining_curves:
    input:
        # model.json is written after the run's metrics/steps.csv and epochs.csv (which the
        # pretrain rule does not declare); random_init has none and is named in the footnote;
        # imported checkpoints were trained elsewhere and are left out.
        expand(
            f"{MODELS}/{{variant}}/seed{{seed}}/{RUN_FILES['meta']}",
            variant=TRAINED_VARIANTS,
            seed=PRETRAIN_SEEDS,
        ),
    output:
        png=report(
            figure_files(figure_name("pretraining_curves"))["png"],
            caption="../report/figures/pretraining_curves.rst",
            category="Pretraining",
        ),
        pdf=figure_files(figure_name("pretraining_curves"))["pdf"],
    log:
        "results/logs/figures/pretraining_curves.log",
    benchmark:
        final_benchmark(
            "figure_pretraining_curves",
            "results/benchmarks/figures/pretraining_curves.tsv",
        )
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        **FIGURE_RESOURCES,
    params:
        runs=lambda wildcards, input: " ".join(os.path.dirname(p) for p in input),
    shell:
        "medslip figure pretraining_curves --runs {params.runs} --out {output.png}"
        " > {log} 2>&1"


rule figure_ablation:
    input:
        table_files("ablation")["csv"],
    output:
        png=report(
            figure_files(figure_name("ablation"))["png"],
            caption="../report/figures/ablation.rst",
            category="Ablation",
        ),
        pdf=figure_files(figure_name("ablation"))["pdf"],
    log:
        "results/logs/figures/ablation.log",
    benchmark:
        final_benchmark("figure_ablation", "results/benchmarks/figures/ablation.tsv")
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        **FIGURE_RESOURCES,
    shell:
        "medslip figure ablation --table {input} --out {output.png} > {log} 2>&1"


rule figure_disentanglement:
    input:
        table_files("disentanglement")["csv"],
    output:
        png=report(
            figure_files(figure_name("disentanglement"))["png"],
            caption="../report/figures/disentanglement.rst",
            category="Ablation",
        ),
        pdf=figure_files(figure_name("disentanglement"))["pdf"],
    log:
        "results/logs/figures/disentanglement.log",
    benchmark:
        final_benchmark(
            "figure_disentanglement", "results/benchmarks/figures/disentanglement.tsv"
        )
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        **FIGURE_RESOURCES,
    shell:
        "medslip figure disentanglement --table {input} --out {output.png} > {log} 2>&1"
