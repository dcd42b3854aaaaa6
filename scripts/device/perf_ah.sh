#!/usr/bin/env bash
# Device call AH (one H100): attnres's aggregations as one operation each (model/aggregate.py): its GPU check and
# sweep, then attnres and attnres full against the baseline at the real size, and attnres's step profiled.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ah_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/aggregate_kernel_check.py > $OUT/ah_check.txt 2>&1; echo "check rc=$?"
tail -2 $OUT/ah_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/aggregate_bench.py --write-best > $OUT/ah_sweep.txt 2>&1
tail -5 $OUT/ah_sweep.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=attnres \
  --json $OUT/ah_block.json > $OUT/ah_block.txt 2>&1
grep -E "^finished" $OUT/ah_block.txt | sed -E 's/checkpoint .*//'; tail -4 $OUT/ah_block.txt
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 100 python3 scripts/profile_step.py --layers 12 --micro 60 --top 12 "arch.residual=attnres" \
  > $OUT/ah_prof.txt 2>&1
grep -E "^====|^  [a-z]" $OUT/ah_prof.txt | head -14; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((570 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=attnres-full --json $OUT/ah_full.json > $OUT/ah_full.txt 2>&1
grep -E "^finished" $OUT/ah_full.txt | sed -E 's/checkpoint .*//'; tail -4 $OUT/ah_full.txt
echo "[t=$((SECONDS-T0))s]"
