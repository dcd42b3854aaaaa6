#!/usr/bin/env bash
# Device call AG (one H100): where attnres (block) spends its step at the real size (1.545x the baseline in call
# AF, 1.181x at 4 layers), and the attnres full row that call AF's time limit cut off.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ag_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 240 python3 scripts/profile_step.py --layers 12 --micro 60 --top 25 --csv $OUT/ag_kernels.csv \
  "arch.residual=attnres" > $OUT/ag_prof.txt 2>&1
grep -E "^====|^  [a-z]" $OUT/ag_prof.txt | head -14; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=attnres-full \
  --json $OUT/ag_full.json > $OUT/ag_full.txt 2>&1
tail -3 $OUT/ag_full.txt; echo "[t=$((SECONDS-T0))s]"
