# Results: the paper's tables (results/tables/{name}.csv + .md, names from medslip.layout)
# built from the metrics files of the evaluation stage only, so each table reruns when exactly
# its metrics change; and three summaries of the data and report stages for the HTML report.
# Needs data.smk, reports.smk, evaluate.smk and finetune.smk (their output lists).

import json
import os
import shlex

from medslip.layout import TABLES, table_files

# Data source of every dataset the data layer reads: SynthCXR-served or a real download.
TABLE_SOURCES = shlex.quote(
    json.dumps(
        {
            d: "SynthCXR" if d in synthcxr_datasets() else "real"
            for d in data_sources(config)
        },
        sort_keys=True,
    )
)


# metrics.json files each table reads (by the task level of results/eval/{task}/...).
TABLE_INPUTS = {
    "zero_shot_classification": eval_metrics("zeroshot"),
    "zero_shot_grounding": eval_metrics("grounding"),
    "finetune_classification": eval_metrics("finetune_cls"),
    "finetune_segmentation": eval_metrics("finetune_seg"),
    "real_lung_segmentation": eval_metrics("finetune_seg"),
    "disentanglement": eval_metrics("probe"),
    "ablation": eval_metrics(
        "zeroshot", "grounding", "finetune_cls", "finetune_seg", "probe"
    ),
}
# Final outputs of the results stage's tables (inputs of rule all).
TABLES_FINAL_OUTPUTS = [
    table_files(name)[kind] for name in TABLES for kind in ("csv", "md")
]


# Tables take a second or two and little memory: with a cluster executor they run where
# Snakemake runs (no sbatch, no queue; workflow/profiles/slurm).
localrules:
    table_zero_shot_classification,
    table_zero_shot_grounding,
    table_finetune_classification,
    table_finetune_segmentation,
    table_real_lung_segmentation,
    table_disentanglement,
    table_ablation,
    table_data_summary,
    table_report_labels,
    table_label_statistics,


# One rule per table (the others reuse this one's settings with their own files and category).
rule table_zero_shot_classification:
    input:
        TABLE_INPUTS["zero_shot_classification"],
    output:
        csv=report(
            table_files("zero_shot_classification")["csv"],
            caption="../report/tables/zero_shot_classification.rst",
            category="Zero-shot",
        ),
        md=table_files("zero_shot_classification")["md"],
    log:
        "results/logs/tables/zero_shot_classification.log",
    benchmark:
        final_benchmark(
            "table_zero_shot_classification",
            "results/benchmarks/tables/zero_shot_classification.tsv",
        )
    conda:
        "../envs/results.yaml"
    params:
        name="zero_shot_classification",
        sources=TABLE_SOURCES,
    shell:
        "medslip table {params.name} --sources {params.sources} --csv {output.csv}"
        " --md {output.md} --metrics {input} > {log} 2>&1"


use rule table_zero_shot_classification as table_zero_shot_grounding with:
    input:
        TABLE_INPUTS["zero_shot_grounding"],
    output:
        csv=report(
            table_files("zero_shot_grounding")["csv"],
            caption="../report/tables/zero_shot_grounding.rst",
            category="Zero-shot",
        ),
        md=table_files("zero_shot_grounding")["md"],
    log:
        "results/logs/tables/zero_shot_grounding.log",
    benchmark:
        final_benchmark(
            "table_zero_shot_grounding",
            "results/benchmarks/tables/zero_shot_grounding.tsv",
        )
    params:
        name="zero_shot_grounding",
        sources=TABLE_SOURCES,


use rule table_zero_shot_classification as table_finetune_classification with:
    input:
        TABLE_INPUTS["finetune_classification"],
    output:
        csv=report(
            table_files("finetune_classification")["csv"],
            caption="../report/tables/finetune_classification.rst",
            category="Fine-tuning",
        ),
        md=table_files("finetune_classification")["md"],
    log:
        "results/logs/tables/finetune_classification.log",
    benchmark:
        final_benchmark(
            "table_finetune_classification",
            "results/benchmarks/tables/finetune_classification.tsv",
        )
    params:
        name="finetune_classification",
        sources=TABLE_SOURCES,


use rule table_zero_shot_classification as table_finetune_segmentation with:
    input:
        TABLE_INPUTS["finetune_segmentation"],
    output:
        csv=report(
            table_files("finetune_segmentation")["csv"],
            caption="../report/tables/finetune_segmentation.rst",
            category="Fine-tuning",
        ),
        md=table_files("finetune_segmentation")["md"],
    log:
        "results/logs/tables/finetune_segmentation.log",
    benchmark:
        final_benchmark(
            "table_finetune_segmentation",
            "results/benchmarks/tables/finetune_segmentation.tsv",
        )
    params:
        name="finetune_segmentation",
        sources=TABLE_SOURCES,


use rule table_zero_shot_classification as table_real_lung_segmentation with:
    input:
        TABLE_INPUTS["real_lung_segmentation"],
    output:
        csv=report(
            table_files("real_lung_segmentation")["csv"],
            caption="../report/tables/real_lung_segmentation.rst",
            category="Real-data check",
        ),
        md=table_files("real_lung_segmentation")["md"],
    log:
        "results/logs/tables/real_lung_segmentation.log",
    benchmark:
        final_benchmark(
            "table_real_lung_segmentation",
            "results/benchmarks/tables/real_lung_segmentation.tsv",
        )
    params:
        name="real_lung_segmentation",
        sources=TABLE_SOURCES,


use rule table_zero_shot_classification as table_disentanglement with:
    input:
        TABLE_INPUTS["disentanglement"],
    output:
        csv=report(
            table_files("disentanglement")["csv"],
            caption="../report/tables/disentanglement.rst",
            category="Ablation",
        ),
        md=table_files("disentanglement")["md"],
    log:
        "results/logs/tables/disentanglement.log",
    benchmark:
        final_benchmark(
            "table_disentanglement", "results/benchmarks/tables/disentanglement.tsv"
        )
    params:
        name="disentanglement",
        sources=TABLE_SOURCES,


use rule table_zero_shot_classification as table_ablation with:
    input:
        TABLE_INPUTS["ablation"],
    output:
        csv=report(
            table_files("ablation")["csv"],
            caption="../report/tables/ablation.rst",
            category="Ablation",
        ),
        md=table_files("ablation")["md"],
    log:
        "results/logs/tables/ablation.log",
    benchmark:
        final_benchmark("table_ablation", "results/benchmarks/tables/ablation.tsv")
    params:
        name="ablation",
        sources=TABLE_SOURCES,


rule table_data_summary:
    input:
        expand(
            "results/data/{dataset}/{name}",
            dataset=sorted(DATA_ROOTS),
            name=["split_counts.json", f"shards/{GATHERED['summary']}"],
        ),
    output:
        csv=report(
            table_files("data_summary")["csv"],
            caption="../report/tables/data_summary.rst",
            category="Data",
        ),
        md=table_files("data_summary")["md"],
    log:
        "results/logs/tables/data_summary.log",
    benchmark:
        final_benchmark(
            "table_data_summary", "results/benchmarks/tables/data_summary.tsv"
        )
    conda:
        "../envs/results.yaml"
    params:
        sources=TABLE_SOURCES,
        dirs=expand("results/data/{dataset}", dataset=sorted(DATA_ROOTS)),
    shell:
        "medslip table data_summary --sources {params.sources} --csv {output.csv}"
        " --md {output.md} --data-dirs {params.dirs} > {log} 2>&1"


rule table_report_labels:
    input:
        REPORT_FINAL_OUTPUTS,
    output:
        csv=report(
            table_files("report_labels")["csv"],
            caption="../report/tables/report_labels.rst",
            category="Reports",
        ),
        md=table_files("report_labels")["md"],
    log:
        "results/logs/tables/report_labels.log",
    benchmark:
        final_benchmark(
            "table_report_labels", "results/benchmarks/tables/report_labels.tsv"
        )
    conda:
        "../envs/results.yaml"
    params:
        reports=lambda wildcards, input: os.path.dirname(input[0]),
    shell:
        "medslip table report_labels --sources '{{}}' --csv {output.csv} --md {output.md}"
        " --reports-dir {params.reports} > {log} 2>&1"


rule table_label_statistics:
    input:
        data=expand(
            "results/data/{dataset}/{name}",
            dataset=sorted(DATA_ROOTS),
            name=["manifest.parquet", "splits.csv"],
        ),
        reports=REPORT_FINAL_OUTPUTS,
        truth=expand(
            "results/synthcxr/ground_truth/{dataset}", dataset=synthcxr_datasets()
        ),
    output:
        csv=report(
            table_files("label_statistics")["csv"],
            caption="../report/tables/label_statistics.rst",
            category="Data",
        ),
        md=table_files("label_statistics")["md"],
    log:
        "results/logs/tables/label_statistics.log",
    benchmark:
        final_benchmark(
            "table_label_statistics", "results/benchmarks/tables/label_statistics.tsv"
        )
    conda:
        "../envs/results.yaml"
    params:
        sources=TABLE_SOURCES,
        dirs=expand("results/data/{dataset}", dataset=sorted(DATA_ROOTS)),
        reports=lambda wildcards, input: os.path.dirname(input.reports[0]),
        entity_maps=shlex.quote(
            json.dumps(config["evaluate"]["entity_maps"], sort_keys=True)
        ),
        model_size=preset(config)["model"]["image_size"],
    shell:
        "medslip table label_statistics --sources {params.sources} --csv {output.csv}"
        " --md {output.md} --data-dirs {params.dirs} --reports-dir {params.reports}"
        " --entity-maps {params.entity_maps} --model-size {params.model_size}"
        " --truth-dirs {input.truth} > {log} 2>&1"
