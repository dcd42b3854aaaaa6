#!/usr/bin/env bash
# Device call AJ (one H100): the aggregation kernels with the committed shapes and, past 8 sources, the sources padded
# to a multiple of 8 (fewer kernels to compile for attnres full): the GPU check, attnres full against the baseline
# (its first window is the compile), then the baseline against the reference over 60 steps (target 1).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/aj_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/aggregate_kernel_check.py > $OUT/aj_check.txt 2>&1; echo "check rc=$?"
tail -2 $OUT/aj_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=attnres-full \
  --json $OUT/aj_full.json > $OUT/aj_full.txt 2>&1
grep -E "^finished" $OUT/aj_full.txt | sed -E 's/checkpoint .*//'; tail -4 $OUT/aj_full.txt
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((570 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 60 --reference \
  --json $OUT/aj_ref.json > $OUT/aj_ref.txt 2>&1
grep -E "^finished" $OUT/aj_ref.txt | sed -E 's/checkpoint .*//'; tail -4 $OUT/aj_ref.txt
echo "[t=$((SECONDS-T0))s]"
