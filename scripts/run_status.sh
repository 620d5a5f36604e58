# Sourced by the training scripts (train_default_model_v4.sh, train_default_model_v5.sh, ablation_v4.sh,
# ablation_mim_target.sh).
# completed EVENTS_FILE: true when the events file's last `done` event says completed (needs $PY).
completed() {
    [ -f "$1" ] && "$PY" - "$1" <<'PY'
import json, sys
done = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if '"event":"done"' in line]
sys.exit(0 if done and done[-1].get("status") == "completed" else 1)
PY
}

# latest RUN: the newest checkpoint folder of $RUNS/RUN
latest() {
    ls -d "$RUNS/$1/checkpoints"/step-* | sort | tail -n 1
}

# phase NAME CONFIG [INIT]: one training phase into $RUNS/NAME, resumed after an interruption, skipped once it has
# completed; a phase that does not complete stops the script (run it again to resume)
phase() {
    local name=$1 config=$2 init=${3:-}
    local events="$RUNS/$name.events.jsonl"
    if completed "$events"; then
        echo "$name: completed, skipped"
        return 0
    fi
    local args=(--config "$config" --out-dir "$RUNS/$name" --events "$events")
    if [ -n "$init" ]; then args+=(--init-from "$init"); fi
    if [ -d "$RUNS/$name/checkpoints" ]; then args+=(--resume); fi
    echo "$name: $PY -m trainer pretrain ${args[*]}"
    "$PY" -m trainer pretrain "${args[@]}"
    completed "$events" || { echo "$name: did not complete (see $events); run this script again to resume"; exit 1; }
}
