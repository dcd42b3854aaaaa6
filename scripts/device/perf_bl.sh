#!/usr/bin/env bash
# Device call BL (one H100): where the arm's fixed costs go (call BK's estimate, 12.12 minutes, missed target 5 by
# 7 s: start-up and compilation 36.8 s, first validation 19.0 s against 7.0 s later, 14.6 s outside the run's clock).
# The 300-step run of BK from a cold inductor cache, then again warm, each output line stamped with the seconds
# since the process started; the end-of-run state and checkpoint sizes.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bl_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bl_prep.txt 2>&1; tail -1 $OUT/bl_prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d)
for k in cold warm; do
  python3 - "$k" <<'PY'
import os, subprocess, sys, time
k = sys.argv[1]
t0 = time.time()
cmd = [sys.executable, "-m", "gptablate_cli", "train", "gpt2_124m", "--set", "data.dataset=pysrc",
       "--set", "train.max_iters=300", "--set", "data.eval_interval=150", "--set", f"run.name={k}"]
with open(os.environ["OUT"] + f"/bl_{k}.txt", "w") as f:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        f.write(f"[{time.time() - t0:7.2f}] {line}")
    rc = p.wait()
    f.write(f"[{time.time() - t0:7.2f}] exit {rc}\n")
PY
  echo "== $k"; grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bl_$k.txt | cut -c1-150
  echo "[t=$((SECONDS-T0))s]"
done
for d in /tmp/gruns/*/; do du -sh "$d" "$d"checkpoints 2>/dev/null; ls -la "$d" | head; done
