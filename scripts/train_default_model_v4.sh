#!/usr/bin/env bash
# Train the default model v4 (issue 32) in its three phases, each resumed after an interruption and skipped once
# it has completed:
#   1. configs/default-model-v4-mae.yaml  reconstruction only, 112 px, from random weights
#   2. configs/default-model-v4-112.yaml  MedFLIP loss + reconstruction, 112 px, from phase 1's last checkpoint
#   3. configs/default-model-v4-224.yaml  the same at 224 px (position table resampled), from phase 2's last
# Usage (in the background): nohup scripts/train_default_model_v4.sh [RUNS_DIR] > RUNS_DIR/v4-chain.log 2>&1 &
# Then: .venv/bin/python scripts/build_default_model.py RUNS_DIR/v4-224 --out <bundle folder>
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-/work/runs}
PY=${PYTHON:-.venv/bin/python}

# shellcheck source=scripts/run_status.sh
. scripts/run_status.sh

phase v4-mae configs/default-model-v4-mae.yaml
phase v4-112 configs/default-model-v4-112.yaml "$(latest v4-mae)"
phase v4-224 configs/default-model-v4-224.yaml "$(latest v4-112)"
