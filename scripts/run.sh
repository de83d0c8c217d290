#!/usr/bin/env bash
# Set up (if needed) and run the workflow: `bash scripts/run.sh [snakemake args]`; default target
# `all` on the embedded default config with every core.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
if [ $# -eq 0 ]; then set -- all; fi
# Snakemake reads --configfile itself before the workflow starts, and for an empty or malformed
# file it says "Config file is not valid JSON or YAML" without naming the file: check each one
# first with medslip check-config, which names the file, the line and the key.
configs=() in_list=0
for arg in "$@"; do
  case "$arg" in
    --configfile=* | --configfiles=*) configs+=("${arg#*=}") in_list=0 ;;
    --configfile | --configfiles) in_list=1 ;;
    -*) in_list=0 ;;
    *) if [ "$in_list" = 1 ]; then configs+=("$arg"); fi ;;
  esac
done
for file in "${configs[@]}"; do
  medslip check-config "$file" > /dev/null
done
exec snakemake --cores all "$@"
