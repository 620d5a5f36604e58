#!/usr/bin/env bash
# The ablation of the default model v4 (issue 32), at the scale of phase 2 cut to a fixed number of steps: four
# arms start from the same reconstruction-only (MAE) checkpoint with configs/default-model-v4-112.yaml and differ
# in ONE choice each, same seed, same data order, same steps:
#   chosen         v4's phase 2: MedFLIP loss + reconstruction (weight 1), random masking, TBX11K films unlabelled
#   no-unlabelled  the same without the images without labels (what they add)
#   mim0           no reconstruction term (and so no images without labels: they feed only that term)
#   attention      attention masking (our reading of XLIP's AttMIM) instead of random
#   random-start   "chosen" from random weights instead of the MAE checkpoint (what phase 1 adds); run it with
#                  ARMS=random-start (not in the default list)
#   avg-pool       the image embedding from the mean of the patch tokens instead of the class token (the tokens
#                  the reconstruction trains); ARMS=avg-pool
#   svd0           no SVD (sigma_1) term: beta 0 (what MedFLIP's SVD loss adds to the features); ARMS=svd0
#   mask50         mask ratio 0.5 instead of 0.75 (more of each image seen, fewer images per CPU-hour); ARMS=mask50
#   lr-low         a third of the image side's peak learning rate (tower, projection, decoder): does the image-text
#                  loss wear away what the reconstruction phase learnt? ARMS=lr-low
#   steps-x1.3     the recipe for 1.3 times the steps: the CPU time the mask50 arm took (94 vs 121 images/s), so
#                  mask50 is compared at equal compute too; ARMS=steps-x1.3
#   nih-pneumonia-only  NIH's label CSV cut to Pneumonia / No Finding (rows with neither left out), so that the NIH
#                  few-label tasks (effusion, atelectasis, edema, infiltration) ask questions this arm's training
#                  labels never named; ARMS=nih-pneumonia-only
# Each arm's last checkpoint is then measured with the few-label benchmark:
#   .venv/bin/medflip bench fewshot --model RUNS/ablation-v4-chosen ... --ks 20 --no-random
# Usage (in the background): nohup scripts/ablation_v4.sh RUNS_DIR MAE_CHECKPOINT [STEPS] > RUNS_DIR/ablation-v4.log 2>&1 &
# A killed arm resumes from its checkpoints when the script is run again; completed arms are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:?runs folder}
INIT=${2:?the MAE phase checkpoint}
STEPS=${3:-450}
PY=${PYTHON:-.venv/bin/python}

arm_config() {  # writes the arm's config (phase 2's with one choice changed) and prints its path
    local arm=$1 out="$RUNS/ablation-v4-$1.yaml"
    "$PY" - "$arm" "$out" "$STEPS" <<'PY'
import sys

import yaml

arm, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
cfg = yaml.safe_load(open("configs/default-model-v4-112.yaml", encoding="utf-8"))
cfg.update(max_steps=steps, budget_minutes=None, eval_every=100000, checkpoint_every=50, keep_last=1)
if arm == "no-unlabelled":
    cfg["unlabelled"] = []
elif arm == "mim0":
    cfg.update(unlabelled=[], mim_weight=0.0)
elif arm == "attention":
    cfg["mask_strategy"] = "attention"
elif arm == "avg-pool":
    cfg["vision_pool"] = "avg"
elif arm == "svd0":
    cfg["beta"] = 0.0
elif arm == "mask50":
    cfg["mask_ratio"] = 0.5
elif arm == "lr-low":
    cfg["lr"] = cfg["lr"] / 3
elif arm == "steps-x1.3":
    cfg["max_steps"] = round(steps * 1.3)
elif arm == "nih-pneumonia-only":
    import csv
    import os
    from pathlib import Path

    source = Path(cfg["extra_sources"][0]).resolve()
    folder = Path(out).resolve().parent / "nih-pneumonia-only"
    folder.mkdir(exist_ok=True)
    if not (folder / "images").exists():
        os.symlink(source.parent / "images", folder / "images")
    with open(source, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    findings = [f for f in fields[4:]]  # the 0/1 finding columns after Source Folder
    kept = []
    for row in rows:
        named = [f for f in row["Finding Labels"].split("|") if f in ("Pneumonia", "No Finding")]
        if named:
            row.update({"Finding Labels": "|".join(named), **{f: "1" if f in named else "0" for f in findings}})
            kept.append(row)
    with open(folder / "labels.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(kept)
    cfg["extra_sources"] = [str(folder / "labels.csv")]
elif arm not in ("chosen", "random-start"):
    sys.exit(f"unknown arm {arm}")
yaml.safe_dump(cfg, open(out, "w", encoding="utf-8"), sort_keys=False)
PY
    echo "$out"
}

# shellcheck source=scripts/run_status.sh
. scripts/run_status.sh

for arm in ${ARMS:-chosen mim0 no-unlabelled attention}; do
    name="ablation-v4-$arm"
    events="$RUNS/$name.events.jsonl"
    if completed "$events"; then echo "$name: completed, skipped"; continue; fi
    config=$(arm_config "$arm")
    args=(--config "$config" --out-dir "$RUNS/$name" --events "$events")
    if [ "$arm" != random-start ]; then args+=(--init-from "$INIT"); fi
    if [ -d "$RUNS/$name/checkpoints" ]; then args+=(--resume); fi
    echo "$name: $PY -m trainer pretrain ${args[*]}"
    "$PY" -m trainer pretrain "${args[@]}" || echo "$name: did not complete (see $events)"
done
