#!/usr/bin/env bash
# Device call K (one H100): the arm's 300-step run, cold (a fresh inductor cache), then the 124M step
# against the reference with the loss kernel's final shape.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
grep -n "^BLOCK\|^WARPS\|^PROGRAMS" gptablate/model/loss.py
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s prepared]"
TA=$SECONDS
TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) timeout 200 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc \
  --set train.max_iters=300 --set data.eval_interval=150 > $OUT/k_arm.txt 2>&1
echo "arm: process wall $((SECONDS-TA)) s"; grep -E "validation:|finished" $OUT/k_arm.txt | cut -c1-200
cp /tmp/gruns/*/metrics.jsonl $OUT/k_arm.jsonl
python3 - <<'PY'
import json, os
for r in map(json.loads, open(os.environ["OUT"] + "/k_arm.jsonl")):
    if r["step"] in (10, 20, 150, 160, 290, 300) or "val_s" in r:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k in ("step", "elapsed_s", "tokens_per_s", "val_s", "gc_ms")})
PY
echo "[t=$((SECONDS-T0))s]"
timeout 200 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/k_bench.json 2>&1 | tee $OUT/k_bench.txt | tail -3
echo "[t=$((SECONDS-T0))s]"
