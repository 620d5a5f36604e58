#!/usr/bin/env bash
# What the reconstruction target does to the image features (issue 32): the reconstruction-only (MAE) phase of
# the default model (configs/default-model-v4-mae.yaml) from random weights, cut to a fixed number of steps, once
# per --mim-target, same seed and data order:
#   patch   each dropped patch normalised by its own mean and spread (MAE's choice; v4's phase 1): texture only
#   image   the pixels as they are: texture and each patch's density relative to the film
#   both    the two stacked
# Why: in a radiograph a finding is a region's density (an opacity is a brighter region), which the per-patch
# normalisation takes out of the target; two numbers of film brightness alone read bacterial vs viral pneumonia
# at 0.64 and NIH effusion at 0.78 (k = 20), where v4's features trail the raw pixels on the first.
# Each arm's last checkpoint is then measured with the few-label benchmark:
#   .venv/bin/medflip bench fewshot --model RUNS/mimtarget-patch --model RUNS/mimtarget-image ... --ks 20
# Usage (in the background): nohup scripts/ablation_mim_target.sh RUNS_DIR [STEPS] > RUNS_DIR/mimtarget.log 2>&1 &
# A killed arm resumes from its checkpoints when the script is run again; completed arms are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:?runs folder}
STEPS=${2:-600}
PY=${PYTHON:-.venv/bin/python}

# shellcheck source=scripts/run_status.sh
. scripts/run_status.sh

for target in ${TARGETS:-image patch both}; do
    name="mimtarget-$target"
    events="$RUNS/$name.events.jsonl"
    if completed "$events"; then echo "$name: completed, skipped"; continue; fi
    config="$RUNS/$name.yaml"  # phase 1's config with the step limit instead of its time budget
    "$PY" - "$config" "$STEPS" "$target" <<'PY'
import sys

import yaml

out, steps, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg = yaml.safe_load(open("configs/default-model-v4-mae.yaml", encoding="utf-8"))
cfg.update(max_steps=steps, budget_minutes=None, mim_target=target, checkpoint_every=100, keep_last=1)
yaml.safe_dump(cfg, open(out, "w", encoding="utf-8"), sort_keys=False)
PY
    args=(--config "$config" --out-dir "$RUNS/$name" --events "$events")
    if [ -d "$RUNS/$name/checkpoints" ]; then args+=(--resume); fi
    echo "$name: $PY -m trainer pretrain ${args[*]}"
    "$PY" -m trainer pretrain "${args[@]}" || echo "$name: did not complete (see $events)"
done
