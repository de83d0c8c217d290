# SynthCXR: the embedded synthetic dataset, written in the official formats.


rule synth:
    output:
        tree=directory("results/synthcxr/{dataset}"),
        truth=directory("results/synthcxr/ground_truth/{dataset}"),
    log:
        "results/logs/synthcxr/{dataset}.log",
    benchmark:
        final_benchmark(
            "synth",
            "results/benchmarks/synthcxr/{dataset}.tsv",
            [{"dataset": dataset} for dataset in synthcxr_datasets()],
        )
    conda:
        "../envs/synth.yaml"
    params:
        config=lambda wildcards: config_for("synth"),
    shell:
        "medslip synth --config {params.config} --out results/synthcxr"
        " --dataset {wildcards.dataset} > {log} 2>&1"


rule synth_contact_sheet:
    input:
        tree="results/synthcxr/mimic_cxr_jpg",
        truth="results/synthcxr/ground_truth/mimic_cxr_jpg",
    output:
        report(
            "results/figures/synthcxr_examples.png",
            caption="../report/synthcxr_examples.rst",
            category="Data",
        ),
    log:
        "results/logs/synthcxr/contact_sheet.log",
    benchmark:
        final_benchmark(
            "synth_contact_sheet",
            "results/benchmarks/synthcxr/contact_sheet.tsv",
            [{}] if "mimic_cxr_jpg" in synthcxr_datasets() else [],
        )
    conda:
        "../envs/synth.yaml"
    params:
        n=config["synthcxr"]["contact_sheet_images"],
    shell:
        "medslip contact-sheet --tree {input.tree} --truth {input.truth} --n {params.n}"
        " --out {output} > {log} 2>&1"
