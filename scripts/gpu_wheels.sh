#!/usr/bin/env bash
# Download, here, the wheels scripts/gpu_check.sh needs on a CUDA machine whose Python (3.12, with
# torch, pandas, pyarrow, pyyaml, safetensors, transformers) has no pip access: medslip's other
# runtime imports, and Snakemake with those of its needs that such an image lacks (step 3), at the
# versions of scripts/constraints.txt. They land in .whl/ (git-ignored, about 27 MB); carry that
# folder to the machine, where gpu_check.sh installs them into a temporary site.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
pin() { grep -i "^$1==" scripts/constraints.txt || { echo "$1 is not pinned" >&2; exit 1; }; }
# jsonschema brings its own needs (referencing, rpds-py, jsonschema-specifications, attrs).
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "$(pin jsonschema)" "$(pin lmdb)"
# Snakemake: connection_pool has no wheel on PyPI (built here, pure Python); of the rest, only
# what a CUDA image with torch, transformers and the scientific stack lacks.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip wheel -q --no-deps -w "$tmp" connection_pool==0.0.3  # what Snakemake 9.27 needs
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --find-links "$tmp" -c scripts/constraints.txt -d "$tmp" \
  "$(pin snakemake)"
for name in annotated_types argparse_dataclass conda_inject configargparse connection_pool \
  docutils dpath fastjsonschema gitdb gitpython greenlet humanfriendly immutables \
  jupyter_core nbformat platformdirs pulp pydantic pydantic_core smart_open smmap snakemake \
  snakemake_interface_common snakemake_interface_executor_plugins \
  snakemake_interface_logger_plugins snakemake_interface_report_plugins \
  snakemake_interface_scheduler_plugins snakemake_interface_storage_plugins sqlalchemy \
  sqlmodel tenacity throttler traitlets typing_inspection yte; do
  cp "$tmp"/"$name"-[0-9]*.whl .whl/
done
ls .whl
