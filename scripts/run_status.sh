# Sourced by the training scripts (train_default_model_v4.sh, ablation_v4.sh): whether a run has completed.
# completed EVENTS_FILE: true when the events file's last `done` event says completed (needs $PY).
completed() {
    [ -f "$1" ] && "$PY" - "$1" <<'PY'
import json, sys
done = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if '"event":"done"' in line]
sys.exit(0 if done and done[-1].get("status") == "completed" else 1)
PY
}
