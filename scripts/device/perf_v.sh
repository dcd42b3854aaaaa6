#!/usr/bin/env bash
# Device call V (one H100): the loss kernel's and add_norm's sweeps with a few more shapes (written into the
# modules), the 124M step against the reference, and the arm's 300-step run from a cold cache (target 5).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/v_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 150 python3 scripts/device/loss_kernel_bench.py --write-best > $OUT/v_loss.txt 2>&1
grep -E "fastest|written|failed" $OUT/v_loss.txt
timeout -k 5 150 python3 scripts/device/addnorm_bench.py --write-best > $OUT/v_an.txt 2>&1
grep -E "fastest|add_norm:|bias_gelu:|inductor:|written|Error" $OUT/v_an.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/v_bench.json \
  > $OUT/v_bench.txt 2>&1
tail -3 $OUT/v_bench.txt; echo "[t=$((SECONDS-T0))s]"
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/v_prep.txt 2>&1; tail -1 $OUT/v_prep.txt
TA=$SECONDS
TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) timeout -k 5 220 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc \
  --set train.max_iters=300 --set data.eval_interval=150 > $OUT/v_arm.txt 2>&1
echo "arm: process wall $((SECONDS-TA)) s"; grep -E "validation:|finished" $OUT/v_arm.txt | cut -c1-200
cp /tmp/gruns/*/metrics.jsonl $OUT/v_arm.jsonl
python3 - <<'PY'
import json, os
for r in map(json.loads, open(os.environ["OUT"] + "/v_arm.jsonl")):
    if r["step"] in (10, 20, 150, 160, 290, 300) or "val_s" in r:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k in ("step", "elapsed_s", "tokens_per_s", "val_s", "val_loss")})
PY
echo "[t=$((SECONDS-T0))s]"
