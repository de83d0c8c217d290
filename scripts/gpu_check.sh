#!/usr/bin/env bash
# The GPU measurements of pretraining, in one command from the repository root of a checkout on a
# CUDA machine (python3 with torch + CUDA; no pip needed: run scripts/gpu_wheels.sh on a machine
# with pip first and bring .whl/ along):
#
#   bash scripts/gpu_check.sh [OUT_DIR]          # default results/benchmarks/gpu
#   GPU_CHECK_DRY=1 bash scripts/gpu_check.sh D  # the same steps at toy sizes, on the CPU
#
# 1. `medslip bench train` at the paper preset (224 px, ResNet-50 to layer3, d 256, 4 layers),
#    B = 64 and 128, fp32 and bf16, eager (every variant) and torch.compile (backbone, MeDSLIP):
#    images/s, ratio to the backbone alone, FLOP bound, peak memory -> OUT/train_speed.csv; its
#    `loader` rows are the data path (LMDB reads, decode, PretrainAugment on the GPU, 8 workers).
# 2. The projection: GPU-hours for 100 epochs over MIMIC-CXR's ~243k frontal training images at
#    the slower of MeDSLIP's bf16 step and the loader -> OUT/projection.csv.
set -euo pipefail
out=${1:-results/benchmarks/gpu}
py=${PYTHON:-python3}
cd "$(dirname "$0")/.."
if ! "$py" -c "import jsonschema, lmdb" 2> /dev/null; then  # the carried wheels
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/medslip-site .whl/*.whl
  export PYTHONPATH="/tmp/medslip-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$out"
if [[ ${GPU_CHECK_DRY:-0} == 1 ]]; then
  preset=demo batches="2" steps=1 workers=0 text_dim=16 all="medslip medklip"
else
  preset=paper batches="64 128" steps=20 workers=8 text_dim=768
  all="medslip medslip_no_protocl medslip_no_icl medslip_no_disentangle medklip global_clip"
fi
"$py" -c 'import torch; print("torch", torch.__version__, "cuda:",
  torch.cuda.get_device_name() if torch.cuda.is_available() else "none")' | tee "$out/device.txt"
for dtype in fp32 bf16; do
  for compile in off on; do
    flags=(--preset "$preset" --steps "$steps" --workers "$workers" --text-dim "$text_dim")
    [[ $dtype == bf16 ]] && flags+=(--bf16)
    # shellcheck disable=SC2086  # word lists
    if [[ $compile == on ]]; then flags+=(--compile --variants medslip); else flags+=(--variants $all); fi
    # shellcheck disable=SC2086
    "$py" -m medslip.cli bench train "${flags[@]}" --batches $batches \
      --out "$out/train_speed.csv" 2>&1 | tee -a "$out/log.txt"
  done
done
"$py" - "$out" <<'PY' | tee -a "$out/log.txt"
import sys
from pathlib import Path

import pandas as pd

EPOCHS, IMAGES = 100, 243_000  # the paper's recipe; MIMIC-CXR frontal training images
out = Path(sys.argv[1])
rows = pd.read_csv(out / "train_speed.csv")
rows = rows[rows["dtype"].eq("bf16")]
rate = rows.pivot_table(index=["batch", "compile"], columns="case", values="images_per_s")
rate["images_per_s"] = rate[["medslip", "loader"]].min(axis=1)
rate["gpu_hours"] = EPOCHS * IMAGES / rate["images_per_s"] / 3600
rate = rate.reset_index()[["batch", "compile", "medslip", "loader", "images_per_s", "gpu_hours"]]
rate.to_csv(out / "projection.csv", index=False)
print(rate.to_string(index=False))
PY
