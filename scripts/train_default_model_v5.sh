#!/usr/bin/env bash
# Train the candidate default model v5 (issue 32): v4's recipe at mask ratio 0.5, from v4's reconstruction-only
# phase (trained by scripts/train_default_model_v4.sh when it is not there yet):
#   2. configs/default-model-v5-112.yaml  MedFLIP loss + reconstruction, 112 px, mask 0.5, from v4-mae's last
#   3. configs/default-model-v5-224.yaml  the same at 224 px, from phase 2's last checkpoint
# Usage (in the background): nohup scripts/train_default_model_v5.sh [RUNS_DIR] > RUNS_DIR/v5-chain.log 2>&1 &
# Then, beside v4 on the same draws: .venv/bin/medflip bench fewshot --model RUNS_DIR/v5-224 --model medflip-default
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-/work/runs}
PY=${PYTHON:-.venv/bin/python}

# shellcheck source=scripts/run_status.sh
. scripts/run_status.sh

phase v4-mae configs/default-model-v4-mae.yaml
phase v5-112 configs/default-model-v5-112.yaml "$(latest v4-mae)"
phase v5-224 configs/default-model-v5-224.yaml "$(latest v5-112)"
