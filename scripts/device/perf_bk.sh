#!/usr/bin/env bash
# Device call BK (one H100): target 5 on the code of this writing (call AO's estimate, 11.87 minutes, had 3-8 s of
# margin; the step got faster since): the arm's 300-step run from a cold inductor cache (the command of calls V and
# AO), then target 1 once more.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bk_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bk_prep.txt 2>&1; tail -1 $OUT/bk_prep.txt
TA=$SECONDS
TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) timeout -k 5 220 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc \
  --set train.max_iters=300 --set data.eval_interval=150 > $OUT/bk_arm.txt 2>&1
echo "arm rc=$?: process wall $((SECONDS-TA)) s"; grep -E "validation:|finished" $OUT/bk_arm.txt | cut -c1-200
cp /tmp/gruns/*/metrics.jsonl $OUT/bk_arm.jsonl
python3 - <<'PY'
import json, os
for r in map(json.loads, open(os.environ["OUT"] + "/bk_arm.jsonl")):
    if r["step"] in (10, 20, 150, 160, 290, 300) or "val_s" in r:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k in ("step", "elapsed_s", "tokens_per_s", "val_s", "val_loss")})
PY
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 240 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/bk_bench.json \
  > $OUT/bk_bench.txt 2>&1
echo "bench rc=$?"; grep -A3 "^recipe" $OUT/bk_bench.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
