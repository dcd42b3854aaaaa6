#!/usr/bin/env bash
# Device call BM (one H100): validation through the compiled training graph, so that the first validation compiles
# nothing (call BL: the eval graph's compile made the first validation 19-21 s against 7 s later). The two ways side
# by side on one trained model (val_graph_bench.py: seconds, losses), then BL's stamped 300-step run, cold and warm.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bm_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bm_prep.txt 2>&1; tail -1 $OUT/bm_prep.txt
TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) timeout -k 5 200 python3 scripts/device/val_graph_bench.py pysrc 2048 > $OUT/bm_val.txt 2>&1
echo "val bench rc=$?"; tail -8 $OUT/bm_val.txt; echo "[t=$((SECONDS-T0))s]"
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)
for k in cold warm; do
  python3 - "$k" <<'PY'
import os, subprocess, sys, time
k = sys.argv[1]
t0 = time.time()
cmd = [sys.executable, "-m", "gptablate_cli", "train", "gpt2_124m", "--set", "data.dataset=pysrc",
       "--set", "train.max_iters=300", "--set", "data.eval_interval=150", "--set", f"run.name={k}"]
with open(os.environ["OUT"] + f"/bm_{k}.txt", "w") as f:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        f.write(f"[{time.time() - t0:7.2f}] {line}")
    rc = p.wait()
    f.write(f"[{time.time() - t0:7.2f}] exit {rc}\n")
PY
  echo "== $k"; grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bm_$k.txt | cut -c1-150
  echo "[t=$((SECONDS-T0))s]"
done
for d in /tmp/gruns/*/; do du -sh "$d" "$d"checkpoints 2>/dev/null; ls -la "$d" | head; done
for f in /tmp/gruns/*/metrics.jsonl; do
  python3 -c 'import json,sys; print(sys.argv[1][11:40], [(r["step"], round(r["val_s"], 2), round(r["val_loss"], 4)) for r in map(json.loads, open(sys.argv[1])) if "val_s" in r])' "$f"
done
