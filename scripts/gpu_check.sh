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
# 3. The DAG end to end on CUDA, when .gpu-dag/ is there: the .test configuration with the paper
#    preset's architecture at 224 px (.test/gpu.yaml) through Snakemake, pretraining and all
#    after it on CUDA; every table of the CPU run must be made again, and OUT/dag_check.csv
#    says whether each ablation.csv metric lies within the CPU run's interval. First, on a CPU
#    machine with the set-up .venv and the bundled text encoder (91 MB: it cannot travel):
#
#   PYTHON=.venv/bin/python bash scripts/gpu_check.sh prepare
#
#    runs that DAG on the CPU in .gpu-dag/ (git-ignored), keeps its tables as the baseline
#    (.gpu-dag/cpu_tables) and the products before pretraining (SynthCXR, reports, shards, text
#    books), and deletes the rest; carry .gpu-dag/ and .whl/ (gpu_wheels.sh brings Snakemake).
#    GPU_CHECK_PARTS=speed (steps 1-2) or dag (step 3) runs a part, e.g. to fit a time limit.
set -euo pipefail
py=${PYTHON:-python3}
[[ $py == */* && $py != /* ]] && py=$PWD/$py  # step 3 runs it from .gpu-dag/
cd "$(dirname "$0")/.."
configs=(.test/config.yaml .test/gpu.yaml)
[[ ${GPU_CHECK_DRY:-0} == 1 ]] && configs=(.test/config.yaml)
dag() {  # Snakemake in .gpu-dag/ on links to this checkout (--configfile takes every word after)
  for name in workflow config .test; do ln -sfn "../$name" ".gpu-dag/$name"; done
  (cd .gpu-dag && "$py" -m snakemake --cores "$(nproc)" "$@" --configfile "${configs[@]}")
}
if [[ ${1:-} == prepare ]]; then
  rm -rf .gpu-dag && mkdir .gpu-dag
  dag all
  mv .gpu-dag/results/tables .gpu-dag/cpu_tables
  find .gpu-dag/results/models -mindepth 1 -maxdepth 1 -type d ! -name pretrain_data \
    -exec rm -rf {} +
  rm -rf .gpu-dag/results/{eval,figures,model_cards,metrics} .gpu-dag/.snakemake \
    .gpu-dag/workflow .gpu-dag/config .gpu-dag/.test
  du -sh .gpu-dag
  exit 0
fi
out=${1:-results/benchmarks/gpu}
if ! "$py" -c "import jsonschema, lmdb, snakemake" 2> /dev/null; then  # the carried wheels
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
parts=" ${GPU_CHECK_PARTS:-speed dag} "  # speed: steps 1-2; dag: step 3 (one per device call)
if [[ $parts == *" speed "* ]]; then
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
fi
if [[ $parts == *" dag "* && -d .gpu-dag/cpu_tables ]]; then
  # Only missing outputs run: the carried files have no Snakemake records, and their copy times
  # must not make Snakemake redo the text books (no encoder here).
  start=$SECONDS
  dag all --rerun-triggers params > "$out/dag.log" 2>&1 || {
    tail -n 40 "$out/dag.log"
    echo "the DAG failed on this machine: $out/dag.log" >&2
    exit 1
  }
  grep -E "steps \(" "$out/dag.log" | tail -n 1
  echo "dag_wall_s=$((SECONDS - start))" | tee -a "$out/log.txt"
  "$py" - "$out" <<'PY' | tee -a "$out/log.txt"
import sys
from pathlib import Path

import pandas as pd

out, cpu, gpu = Path(sys.argv[1]), Path(".gpu-dag/cpu_tables"), Path(".gpu-dag/results/tables")
missing = sorted(p.name for p in cpu.iterdir() if not (gpu / p.name).exists())
print("tables missing after the CUDA run:", missing or "none")
a, b = (pd.read_csv(d / "ablation.csv").set_index("variant") for d in (cpu, gpu))
rows = [
    {"variant": v, "metric": m, "cpu": a.at[v, m], "cpu_lo": a.at[v, f"{m}_lo"],
     "cpu_hi": a.at[v, f"{m}_hi"], "cuda": b[m].get(v) if m in b else float("nan")}
    for m in a.columns if f"{m}_lo" in a.columns for v in a.index if pd.notna(a.at[v, m])
]
check = pd.DataFrame(rows)
check["within"] = check["cuda"].between(check["cpu_lo"], check["cpu_hi"])
check.to_csv(out / "dag_check.csv", index=False)
print(check.to_string(index=False))
print(f"{int(check.within.sum())} of {len(check)} metrics within the CPU run's interval")
PY
fi
