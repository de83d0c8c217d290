#!/usr/bin/env bash
# Set up (if needed) and run the workflow: `bash scripts/run.sh [snakemake args]`; default target
# `all` on the embedded default config with every core.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ $# -eq 0 ]; then set -- all; fi
exec snakemake --cores all "$@"
