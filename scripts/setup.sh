#!/usr/bin/env bash
# Create or update .venv with the pinned stack (torch CPU wheel first, then everything else with
# torch pinned, at the versions of scripts/constraints.txt). Idempotent: does nothing when
# pyproject.toml, the constraints and this script are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
stamp=.venv/.medslip-setup
want=$(cat pyproject.toml scripts/setup.sh scripts/constraints.txt | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "medslip needs Python 3.11"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/pip install -q -U pip -c scripts/constraints.txt
# The CPU wheel of torch 2.13.0 first: any other torch spec pulls gigabytes of CUDA packages.
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q torch==2.13.0 -c scripts/constraints.txt -e ".[all,dev]"
echo "$want" > "$stamp"
echo "setup: .venv ready"
