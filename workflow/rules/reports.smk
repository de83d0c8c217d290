# Report parsing: the reports of the studies the MIMIC-CXR-JPG manifest lists (so data.mimic_views
# applies and the report set is the image set) -> triplets, 51x75 label matrices and uncertain
# masks, class labels. Scatter: the studies, sorted by study id, are cut into
# config["reports"]["n_chunks"] contiguous chunks; gather: the chunks are concatenated in order
# (identical to a one-chunk run).

import os

from medslip.layout import REPORT_FILES as REPORT_OUTPUTS

REPORT_CHUNKS = list(range(config["reports"]["n_chunks"]))
# Final outputs of the report-parsing stage (inputs of rule all).
REPORT_FINAL_OUTPUTS = expand("results/reports/mimic_cxr/{name}", name=REPORT_OUTPUTS)


rule parse_reports_chunk:
    input:
        manifest="results/data/mimic_cxr_jpg/manifest.parquet",
        root=mimic_reports_root(),
    output:
        directory("results/reports/mimic_cxr/chunks/{chunk}"),
    log:
        "results/logs/reports/parse_chunk_{chunk}.log",
    benchmark:
        "results/benchmarks/reports/parse_chunk_{chunk}.tsv"
    wildcard_constraints:
        chunk=r"\d+",
    conda:
        "../envs/reports.yaml"
    params:
        n_chunks=config["reports"]["n_chunks"],
    shell:
        "medslip parse-reports --format mimic --input {input.manifest} --root {input.root}"
        " --chunk {wildcards.chunk} --n-chunks {params.n_chunks} --out-dir {output}"
        " > {log} 2>&1"


rule parse_reports_gather:
    input:
        expand("results/reports/mimic_cxr/chunks/{chunk}", chunk=REPORT_CHUNKS),
    output:
        REPORT_FINAL_OUTPUTS,
    log:
        "results/logs/reports/gather.log",
    benchmark:
        final_benchmark("parse_reports_gather", "results/benchmarks/reports/gather.tsv")
    conda:
        "../envs/reports.yaml"
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "medslip parse-reports --gather {input} --out-dir {params.out_dir}"
        " > {log} 2>&1"
