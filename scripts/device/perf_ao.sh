#!/usr/bin/env bash
# Device call AO (one H100): hyper_step's kernels with bf16 streams against fp32 (an estimate for a decision), then
# targets 1 and 5 again on the current code: the 124M step against the reference over 60 steps, and the arm's
# 300-step run from a cold inductor cache (the command of call V).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ao_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 scripts/device/stream_dtype_bench.py > $OUT/ao_dtype.txt 2>&1; echo "dtype bench rc=$?"
cat $OUT/ao_dtype.txt | tail -14; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 240 python3 -m gptablate_cli bench gpt2_124m --steps 60 --reference --json $OUT/ao_bench.json \
  > $OUT/ao_bench.txt 2>&1
tail -3 $OUT/ao_bench.txt; echo "[t=$((SECONDS-T0))s]"
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/ao_prep.txt 2>&1; tail -1 $OUT/ao_prep.txt
TA=$SECONDS
TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) timeout -k 5 220 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc \
  --set train.max_iters=300 --set data.eval_interval=150 > $OUT/ao_arm.txt 2>&1
echo "arm: process wall $((SECONDS-TA)) s"; grep -E "validation:|finished" $OUT/ao_arm.txt | cut -c1-200
cp /tmp/gruns/*/metrics.jsonl $OUT/ao_arm.jsonl
python3 - <<'PY'
import json, os
for r in map(json.loads, open(os.environ["OUT"] + "/ao_arm.jsonl")):
    if r["step"] in (10, 20, 150, 160, 290, 300) or "val_s" in r:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k in ("step", "elapsed_s", "tokens_per_s", "val_s", "val_loss")})
PY
echo "[t=$((SECONDS-T0))s]"
