# Data layer: official-format trees -> manifest -> published splits -> image shards.
# Scatter: each dataset's images go to config["data"]["n_shards"] shards by a stable sha256 of
# their id (one job each, decoding with `threads` processes); gather: the shard summary
# (counts, sha256), the per-image index and the quarantine table. File names come from
# medslip.layout (shard_files, GATHERED), shared with the code that writes them.

import os

from medslip.layout import GATHERED, shard_files

DATA = config["data"]
# Sources read by the data layer: the SynthCXR-served datasets plus those whose root is set.
DATA_ROOTS = {name: dataset_root(name) for name in data_sources(config)}
# The pretraining corpus's data-stage directory (read by the text books and pretraining).
MIMIC_DATA = "results/data/mimic_cxr_jpg"
DATA_SHARDS = [
    f"results/data/{{source}}/shards/{shard_files(i, DATA['backend'])['shard']}"
    for i in range(DATA["n_shards"])
]
SHARD_FILES = shard_files("{shard}", DATA["backend"])
DATA_SPLIT_SEED = (
    DATA["splits"]["seed"] if DATA["splits"]["seed"] is not None else config["seed"]
)
# Final outputs of the data stage (inputs of rule all).
DATA_FINAL_OUTPUTS = expand(
    "results/data/{source}/{name}",
    source=sorted(DATA_ROOTS),
    name=["splits.csv", "split_counts.json", f"shards/{GATHERED['summary']}"],
)


wildcard_constraints:
    source="|".join(DATA_ROOTS),
    shard=r"\d{5}",


# Bookkeeping that reads tables, not images (seconds, under 200 MB on the default data; well under
# a minute on MIMIC-CXR-JPG): with a cluster executor it runs where Snakemake runs, as soon as its
# dataset's inputs are there, instead of queueing (workflow/profiles/slurm). The manifest reads the
# dataset's metadata tables and decodes no image (SIIM: the few header tags of each DICOM, not
# its pixels).
localrules:
    data_manifest,
    data_splits,
    data_gather_shards,


rule data_manifest:
    input:
        root=lambda wildcards: DATA_ROOTS[wildcards.source],
        tables=root_tables,
    output:
        ensure("results/data/{source}/manifest.parquet", non_empty=True),
    log:
        "results/logs/data/manifest_{source}.log",
    benchmark:
        "results/benchmarks/data/manifest_{source}.tsv"
    conda:
        "../envs/data.yaml"
    params:
        views=lambda wildcards: (
            "--views " + " ".join(DATA["mimic_views"])
            if wildcards.source == "mimic_cxr_jpg"
            else ""
        ),
    shell:
        "medslip manifest --dataset {wildcards.source} --root {input.root} {params.views}"
        " --out {output} > {log} 2>&1"


rule data_splits:
    input:
        "results/data/{source}/manifest.parquet",
    output:
        table="results/data/{source}/splits.csv",
        counts="results/data/{source}/split_counts.json",
    log:
        "results/logs/data/splits_{source}.log",
    conda:
        "../envs/data.yaml"
    params:
        seed=DATA_SPLIT_SEED,
        val=DATA["splits"]["val_fraction"],
        test=DATA["splits"]["test_fraction"],
        subsets=" ".join(str(f) for f in DATA["splits"]["subset_fractions"]),
    shell:
        "medslip splits --manifest {input} --seed {params.seed} --val-fraction {params.val}"
        " --test-fraction {params.test} --subsets {params.subsets} --out {output.table}"
        " --counts {output.counts} > {log} 2>&1"


rule data_preprocess_shard:
    input:
        manifest="results/data/{source}/manifest.parquet",
        root=lambda wildcards: DATA_ROOTS[wildcards.source],
    output:
        **{
            kind: f"results/data/{{source}}/shards/{name}"
            for kind, name in SHARD_FILES.items()
        },
    log:
        "results/logs/data/preprocess_{source}_{shard}.log",
    benchmark:
        "results/benchmarks/data/preprocess_{source}_{shard}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 2
    params:
        n_shards=DATA["n_shards"],
        size=DATA["image_size"],
        aspect=DATA["aspect"],
    shell:
        "medslip preprocess --manifest {input.manifest} --root {input.root}"
        " --shard {wildcards.shard} --n-shards {params.n_shards} --size {params.size}"
        " --aspect {params.aspect} --workers {threads} --out {output.shard} > {log} 2>&1"


rule data_gather_shards:
    input:
        DATA_SHARDS,
    output:
        **{
            kind: f"results/data/{{source}}/shards/{name}"
            for kind, name in GATHERED.items()
        },
    log:
        "results/logs/data/gather_{source}.log",
    conda:
        "../envs/data.yaml"
    params:
        out_dir=lambda wildcards, output: os.path.dirname(output.summary),
        max_bad=DATA["max_bad_fraction"],
    shell:
        "medslip preprocess --gather {input} --max-bad-fraction {params.max_bad}"
        " --out {params.out_dir} > {log} 2>&1"
