#!/usr/bin/env bash
# Device call L (one H100): the multi-stream variants at the real size (12 layers, the recipe's step),
# and where their extra GPU time goes (12 layers, micro-batch 30).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
timeout 330 python3 -m gptablate_cli bench gpt2_124m --steps 20 --all-variants --variant residual=hyper \
  --variant residual=hyper-static --variant residual=mhc --json $OUT/l_var.json 2>&1 | tee $OUT/l_var.txt | tail -8
echo "[t=$((SECONDS-T0))s]"
timeout 220 python3 scripts/profile_step.py --layers 12 --micro 30 --top 30 "arch.residual=hyper" "arch.residual=mhc" \
  > $OUT/l_prof.txt 2>&1
grep -A12 "^====" $OUT/l_prof.txt
echo "[t=$((SECONDS-T0))s]"
