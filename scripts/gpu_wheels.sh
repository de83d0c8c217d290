#!/usr/bin/env bash
# Download, here, the wheels scripts/gpu_check.sh needs on a CUDA machine whose Python (3.12, with
# torch, pandas, pyarrow, pyyaml, safetensors, transformers) has no pip access: medslip's other
# runtime imports, at the versions of scripts/constraints.txt. They land in .whl/ (git-ignored);
# carry that folder to the machine, where gpu_check.sh installs them into a temporary site.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
pin() { grep -i "^$1==" scripts/constraints.txt || { echo "$1 is not pinned" >&2; exit 1; }; }
# jsonschema brings its own needs (referencing, rpds-py, jsonschema-specifications, attrs).
python3 -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl "$(pin jsonschema)" "$(pin lmdb)"
ls .whl
