#!/usr/bin/env bash
# Device call EY (one H100): hyper_step's row in parts at EX's tuning (2 warps, 3 parts at 768; forward capped at 168
# registers; both token loops at 2 stages), EX's failure under Triton 3.6 mended (a loop variable `_` rebound to masks
# of two shapes): the kernel check (now also at 1, 2 and 4 warps), the GPU tests, the step twice; then the code before
# against the parts at 1.5B's streams (16,384 x 4 x 1,600) and 345M's (30,720 x 4 x 1,024).
source "$(dirname "$0")/common.sh" ey
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 200 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/ey_tests.txt 2>&1
tail -1 $OUT/ey_tests.txt; grep -E "^E  " $OUT/ey_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
for i in 1 2; do
  timeout -k 5 150 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper 2>&1 | tail -2 | cut -c1-200
  echo "[t=$((SECONDS-T0))s]"
done
for shape in 16384,1600 30720,1024; do
  timeout -k 5 $((580 - SECONDS + T0)) python3 scripts/device/hyperstep_ab.py head=.dev/ab/hyperstep_head.py \
      parts=gptablate/model/hyperstep.py --warps 2,4 --shape $shape 2>&1 | grep -vi warn | grep -E "^[a-z]|best" | cut -c1-240
  echo "[t=$((SECONDS-T0))s]"
done
