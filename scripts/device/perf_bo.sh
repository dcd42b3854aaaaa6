#!/usr/bin/env bash
# Device call BO (one H100): target 5 on one more machine with validation through the training graph: call BM's
# stamped 300-step run from a cold inductor cache, then target 1 on the same machine (how fast this H100 is).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bo_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bo_prep.txt 2>&1; tail -1 $OUT/bo_prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)
for k in cold; do
  python3 - "$k" <<'PY'
import os, subprocess, sys, time
k = sys.argv[1]
t0 = time.time()
cmd = [sys.executable, "-m", "gptablate_cli", "train", "gpt2_124m", "--set", "data.dataset=pysrc",
       "--set", "train.max_iters=300", "--set", "data.eval_interval=150", "--set", f"run.name={k}"]
with open(os.environ["OUT"] + f"/bo_{k}.txt", "w") as f:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        f.write(f"[{time.time() - t0:7.2f}] {line}")
    rc = p.wait()
    f.write(f"[{time.time() - t0:7.2f}] exit {rc}\n")
PY
  echo "== $k"; grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bo_$k.txt | cut -c1-150
  echo "[t=$((SECONDS-T0))s]"
done
for f in /tmp/gruns/*/metrics.jsonl; do
  python3 -c 'import json,sys; print(sys.argv[1][11:40], [(r["step"], round(r["val_s"], 2), round(r["val_loss"], 4)) for r in map(json.loads, open(sys.argv[1])) if "val_s" in r])' "$f"
done
timeout -k 5 240 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/bo_bench.json \
  > $OUT/bo_bench.txt 2>&1
echo "bench rc=$?"; grep -A3 "^recipe" $OUT/bo_bench.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
