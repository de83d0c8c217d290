#!/usr/bin/env bash
# Set up (if needed) and run every check CI runs: ruff, snakefmt, snakemake --lint, pytest
# (unit tests + one end-to-end run of the .test/ config through Snakemake).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" DVC_NO_ANALYTICS=1
# One command per line: under `set -e` a failure on the left of `&&` would not stop the script.
echo "== ruff"
ruff check .
ruff format --check .
echo "== snakefmt"; snakefmt --check workflow
echo "== snakemake --lint"
lint=$(snakemake --lint --configfile .test/config.yaml 2>&1) || { echo "$lint"; exit 1; }
if ! grep -q "Congratulations, your workflow is in a good condition" <<<"$lint"; then
  echo "$lint"; exit 1
fi
echo "== pytest"
set +e
pytest -q "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
exit "$rc"
