# Report parsing: MIMIC-CXR-format reports -> triplets, 51x75 label matrices, class labels.
# Scatter: the sorted report files are cut into config["reports"]["n_chunks"] contiguous chunks;
# gather: the chunks are concatenated in order (identical to a one-chunk run); the
# uncertain_as_positive setting travels with the chunks.

import os

from medslip.reports.matrix import OUTPUT_FILES as REPORT_OUTPUTS

REPORT_CHUNKS = list(range(config["reports"]["n_chunks"]))


# Root of the MIMIC-CXR reports tree: the configured one or the MIMIC-CXR-JPG root.
MIMIC_REPORTS_ROOT = config["reports"]["mimic_reports_root"] or dataset_root(
    "mimic_cxr_jpg"
)
# Final outputs of the report-parsing stage (inputs of rule all).
REPORT_FINAL_OUTPUTS = expand("results/reports/mimic_cxr/{name}", name=REPORT_OUTPUTS)


rule parse_reports_chunk:
    input:
        tree=MIMIC_REPORTS_ROOT,
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
        uncertain=(
            "--uncertain-as-positive"
            if config["reports"]["uncertain_as_positive"]
            else ""
        ),
    shell:
        "medslip parse-reports --format mimic --input {input.tree} --chunk {wildcards.chunk}"
        " --n-chunks {params.n_chunks} {params.uncertain} --out-dir {output} > {log} 2>&1"


rule parse_reports_gather:
    input:
        expand("results/reports/mimic_cxr/chunks/{chunk}", chunk=REPORT_CHUNKS),
    output:
        REPORT_FINAL_OUTPUTS,
    log:
        "results/logs/reports/gather.log",
    benchmark:
        "results/benchmarks/reports/gather.tsv"
    conda:
        "../envs/reports.yaml"
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "medslip parse-reports --gather {input} --out-dir {params.out_dir}"
        " > {log} 2>&1"
