#!/usr/bin/env bash
# Deploy this clone with snakedeploy into DIR, a folder of its own for one study (its config/ and
# results/), the workflow staying in this clone:
#   bash scripts/deploy.sh DIR [--branch main | --tag T | --commit C] [--force]
# then edit DIR/config/config.yaml and run `snakemake --cores all all` in DIR. snakedeploy 0.17.1
# writes the module path of a local repository relative ("workflow/Snakefile", which Snakemake
# reads as DIR/workflow/workflow/Snakefile): it is made this clone's absolute path. The Snakefile
# finds the medslip source beside it, so no environment variable is needed.
set -euo pipefail
if [ $# -lt 1 ]; then
  sed -n '2,4p' "$0" >&2
  exit 2
fi
dest=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
# snakedeploy wants a ref, which it ignores for a local repository (deployed as it is).
if [ $# -eq 0 ]; then set -- --branch main; fi
snakedeploy deploy-workflow "$repo" "$dest" --name medslip "$@"
snakefile="$dest/workflow/Snakefile"
sed -i "s|^\( *\)\"workflow/Snakefile\"\$|\1\"$repo/workflow/Snakefile\"|" "$snakefile"
grep -q "\"$repo/workflow/Snakefile\"" "$snakefile" || {
  echo "deploy: no module path to fix in $snakefile:" >&2
  cat "$snakefile" >&2
  exit 1
}
