#!/usr/bin/env bash
# Device call G (one H100): the arm's start-up, compilation and validation with the fused loss, cold
# and with inductor's cache warm; the baseline against the reference with the heap frozen after
# compiling; the 12-layer, micro-batch-60 step's GPU time by kind of kernel, with and without CUDA graphs.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s prepared]"
arm() {  # $1: name. 300 steps, validation at 150 and 300 over the whole validation split
  TA=$SECONDS
  timeout 200 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set train.max_iters=300 \
    --set data.eval_interval=150 --set run.name=$1 > $OUT/g_$1.txt 2>&1
  echo "$1: process wall $((SECONDS-TA)) s"; grep -E "model:|validation:|finished" $OUT/g_$1.txt | cut -c1-200
  python3 - "$1" <<'PY'
import json, glob, os, sys
newest = max(glob.glob("/tmp/gruns/*/metrics.jsonl"), key=os.path.getmtime)
text = open(newest).read()
open(f"{os.environ['OUT']}/g_{sys.argv[1]}.jsonl", "w").write(text)
rows = [json.loads(l) for l in text.splitlines()]
for r in rows:
    if r["step"] in (10, 20, 150, 160, 290, 300) or "val_s" in r:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items() if k in ("step", "elapsed_s", "tokens_per_s", "val_s", "gc_ms")})
PY
}
arm armcold; echo "[t=$((SECONDS-T0))s]"
arm armwarm; echo "[t=$((SECONDS-T0))s]"
echo "== bench 124M with the reference, 30 steps"
timeout 200 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/g_bench.json 2>&1 | tee $OUT/g_bench.txt | tail -3
echo "[t=$((SECONDS-T0))s]"
echo "== profile, 12 layers, micro 60"
timeout 120 python3 scripts/profile_step.py --layers 12 --micro 60 --top 30 "" > $OUT/g_profile.txt 2>&1
grep -A 12 "====" $OUT/g_profile.txt | cut -c1-160
echo "[t=$((SECONDS-T0))s]"
timeout 110 python3 scripts/profile_step.py --layers 12 --micro 60 --mode reduce-overhead "" > $OUT/g_profile_cg.txt 2>&1
grep -A 12 "====" $OUT/g_profile_cg.txt | cut -c1-160; tail -3 $OUT/g_profile_cg.txt | cut -c1-300
echo "[t=$((SECONDS-T0))s]"
