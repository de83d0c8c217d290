# Text books: the frozen text encoder's embeddings of the 75 entity and 51 landmark prompts
# (results/models/text_books.safetensors, read by pretraining and every evaluation of a model
# trained here; text_books_official.safetensors, the official text side that imported checkpoints
# read) and of whole reports (report_embeddings.safetensors, the global CLIP baseline's targets);
# medslip text-books, code in medslip.model.text_books. Needs common.smk.

from medslip.layout import text_books_path

TEXT_BOOKS = text_books_path(imported=False)
TEXT_BOOKS_OFFICIAL = text_books_path(imported=True)
REPORT_EMBEDDINGS = "results/models/report_embeddings.safetensors"


rule text_books:
    output:
        books=TEXT_BOOKS,
        meta=TEXT_BOOKS.replace(".safetensors", ".json"),
    log:
        "results/logs/pretrain/text_books.log",
    benchmark:
        "results/benchmarks/pretrain/text_books.tsv"
    conda:
        "../envs/train.yaml"
    params:
        config=lambda wildcards: config_for("text_books"),
    shell:
        "medslip text-books --config {params.config} --out {output.books} > {log} 2>&1"


# The books of imported checkpoints: text.encoder (a local Bio_ClinicalBERT) and text.descriptions
# (the official ones) with the official pooling and prompt lengths (medslip.settings.OFFICIAL_TEXT).
rule text_books_official:
    output:
        books=TEXT_BOOKS_OFFICIAL,
        meta=TEXT_BOOKS_OFFICIAL.replace(".safetensors", ".json"),
    log:
        "results/logs/pretrain/text_books_official.log",
    benchmark:
        "results/benchmarks/pretrain/text_books_official.tsv"
    conda:
        "../envs/train.yaml"
    params:
        config=lambda wildcards: config_for("text_books_official"),
    shell:
        "medslip text-books --official --config {params.config} --out {output.books}"
        " > {log} 2>&1"


rule report_embeddings:
    input:
        manifest=f"{MIMIC_DATA}/manifest.parquet",
        root=mimic_reports_root(),
    output:
        REPORT_EMBEDDINGS,
    log:
        "results/logs/pretrain/report_embeddings.log",
    benchmark:
        "results/benchmarks/pretrain/report_embeddings.tsv"
    conda:
        "../envs/train.yaml"
    params:
        config=lambda wildcards: config_for("text_books"),
    shell:
        "medslip text-books --config {params.config} --reports-manifest {input.manifest}"
        " --root {input.root} --reports-out {output} > {log} 2>&1"
