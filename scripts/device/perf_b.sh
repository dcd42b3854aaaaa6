#!/usr/bin/env bash
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
g() { python3 -m gptablate_cli "$@"; }
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
g prepare text "$SRC" --glob '*.py' --name pysrc 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s prepared]"
# The arm: 124M recipe, cold compile, validation every 150 steps over the whole val split.
TA=$SECONDS; python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set train.max_iters=300 \
  --set data.eval_interval=150 --set run.name=arm 2>&1 | grep -E "validation:|finished|step (10|20|150|300)/"; echo "train wall $((SECONDS-TA)) s"
cp /tmp/gruns/*/metrics.jsonl $OUT/b_arm_metrics.jsonl; cp /tmp/gruns/*/log.txt $OUT/b_arm_log.txt
echo "[t=$((SECONDS-T0))s arm]"
g bench gpt2_124m --data --set data.dataset=pysrc --steps 30 --json $OUT/b_data.json 2>&1 | tail -2
g bench gpt2_124m --steps 30 --json $OUT/b_synth.json 2>&1 | tail -2
echo "[t=$((SECONDS-T0))s data]"
python3 scripts/profile_step.py "" "arch.residual=hyper,arch.hyper.dynamic=false" "arch.residual=mhc" "arch.residual=hyper" > $OUT/b_profiles.txt 2>&1
grep -A 12 "====" $OUT/b_profiles.txt | cut -c1-150 | head -80
echo "[t=$((SECONDS-T0))s profiles]"
