#!/usr/bin/env bash
# Device call AI (one H100): the aggregation kernels with one reduction across warps per kind of sum: their GPU
# check and sweep, then attnres and attnres full against the baseline at the real size.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ai_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/aggregate_kernel_check.py > $OUT/ai_check.txt 2>&1; echo "check rc=$?"
tail -2 $OUT/ai_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/aggregate_bench.py --write-best > $OUT/ai_sweep.txt 2>&1
tail -5 $OUT/ai_sweep.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=attnres \
  --json $OUT/ai_block.json > $OUT/ai_block.txt 2>&1
grep -E "^finished" $OUT/ai_block.txt | sed -E 's/checkpoint .*//'; tail -4 $OUT/ai_block.txt
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((570 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=attnres-full --json $OUT/ai_full.json > $OUT/ai_full.txt 2>&1
grep -E "^finished" $OUT/ai_full.txt | sed -E 's/checkpoint .*//'; tail -4 $OUT/ai_full.txt
echo "[t=$((SECONDS-T0))s]"
