# Model cards: one MODEL_CARD.md (Hugging Face layout) per pretrained or imported run, written
# after its evaluations from its model.json, their metrics files, the data stage's split files
# and the real-data lung segmentation table (results/model_cards/{variant}/seed{seed}/, name from
# medslip.layout; code in medslip.tables.model_card). Needs pretrain.smk, evaluate.smk,
# finetune.smk and tables.smk. Export: MODEL_CARD_OUTPUTS.

from medslip.layout import model_card_path

# Final outputs of the model cards (inputs of rule all).
MODEL_CARD_OUTPUTS = [
    model_card_path(name, seed)
    for name in PRETRAIN_VARIANTS
    for seed in run_seeds(name)
]


# A card reads a few small files (a second): with a cluster executor it runs where Snakemake runs.
localrules:
    model_card,


rule model_card:
    input:
        meta=f"{MODELS}/{{variant}}/seed{{seed}}/{RUN_FILES['meta']}",
        weights=f"{MODELS}/{{variant}}/seed{{seed}}/{RUN_FILES['weights']}",
        metrics=run_metrics,
        splits=expand("results/data/{dataset}/splits.csv", dataset=sorted(DATA_ROOTS)),
        real=table_files("real_lung_segmentation")["csv"],
    output:
        report(
            model_card_path("{variant}", "{seed}"),
            caption="../report/model_card.rst",
            category="Model cards",
            subcategory="{variant}",
        ),
    log:
        "results/logs/model_cards/{variant}_seed{seed}.log",
    conda:
        "../envs/results.yaml"
    params:
        sources=TABLE_SOURCES,
        run_dir=lambda wildcards, input: os.path.dirname(input.meta),
        data=expand("results/data/{dataset}", dataset=sorted(DATA_ROOTS)),
        pretrain=lambda wildcards: (
            ""
            if variant(wildcards.variant).imported
            else f"--pretrain-data {MIMIC_DATA}"
        ),
    shell:
        "medslip model-card --run-dir {params.run_dir} --sources {params.sources}"
        " --data-dirs {params.data} {params.pretrain} --real-table {input.real}"
        " --metrics {input.metrics} --out {output} > {log} 2>&1"
