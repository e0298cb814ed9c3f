#!/usr/bin/env bash
# Exact resume on the default demo, as a user would check it: an
# uninterrupted run, then the same command killed with `kill -9` once epoch
# EPOCH has started and run again; the two results.json are compared.
#
# Usage (repository root, the project installed):
#   bash tests/benchmarks/kill_resume_demo.sh [WORKDIR] [EPOCH]
set -euo pipefail
work=${1:-/tmp/zsser_kill_resume}
epoch=${2:-12}
rm -rf "$work" && mkdir -p "$work"
ref="$work/results/en_de/fbank_stats/proposed/1234"
killed="$work/killed"
echo "uninterrupted run (corpus, cache, training from scratch):"
/usr/bin/time -f "  %e s wall, %M kB max RSS" -o "$work/reference.time" \
  python recipes/train.py hparams/demo.yaml --results_root="$work/results" \
  > "$work/reference.log" 2>&1
cat "$work/reference.time"
python recipes/train.py hparams/demo.yaml --results_root="$work/results" \
  --output_folder="$killed" > "$work/killed.log" 2>&1 &
pid=$!
until grep -q "Going into epoch $epoch" "$work/killed.log" 2>/dev/null; do
  kill -0 "$pid" 2>/dev/null || { echo "the run ended before epoch $epoch"; exit 1; }
  sleep 0.2
done
sleep 0.5
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
echo "killed during epoch $epoch; checkpoints left: $(ls "$killed/save" | grep -c CKPT)"
echo "the same command again:"
/usr/bin/time -f "  %e s wall" -o "$work/resumed.time" \
  python recipes/train.py hparams/demo.yaml --results_root="$work/results" \
  --output_folder="$killed" > "$work/resumed.log" 2>&1
cat "$work/resumed.time"
python - "$ref/results.json" "$killed/results.json" <<'PY'
import json
import sys

a, b = (json.load(open(path)) for path in sys.argv[1:3])
keys = ["uar", "macro_f1", "confusion_matrix", "best_epoch", "best_valid_uar",
        "valid_mean_language_uar", "valid_uar_per_language", "run_identity"]
same = {key: a[key] == b[key] for key in keys}
diag = [{k: v for k, v in r.get("diagnostics", {}).items() if k != "seconds"}
        for r in (a, b)]
same["diagnostics (but their run time)"] = diag[0] == diag[1]
for key, equal in same.items():
    print(f"  {key}: {'same' if equal else 'DIFFERENT'}")
print(f"  test UAR {a['uar']:.2%} / {b['uar']:.2%}, macro-F1 {a['macro_f1']:.2%} / "
      f"{b['macro_f1']:.2%}, best epoch {a['best_epoch']} / {b['best_epoch']}")
sys.exit(0 if all(same.values()) else 1)
PY
