#!/usr/bin/env bash
# Device call EX (one H100): hyper_step's row in parts of one 128-feature chunk a warp (768 features: 6 parts at 1 warp,
# 3 at 2, 2 at 4 of which one half masked) against the code before (.dev/ab/hyperstep_head.py, a row of 8 chunks, two
# of them masked); the parts' fastest warps, caps and stages written into TUNING; the kernel check, the step.

source "$(dirname "$0")/common.sh" ex
python3 -m pip install -q pytest > /dev/null 2>&1
python3 -c "import triton, torch; print('triton', triton.__version__, 'torch', torch.__version__)"
timeout -k 5 200 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/hyperstep_ab.py head=.dev/ab/hyperstep_head.py parts=gptablate/model/hyperstep.py \
    --warps 4 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 180 python3 scripts/device/hyperstep_ab.py parts=gptablate/model/hyperstep.py --warps 1,2,4 \
    --write-best parts 2>&1 | grep -vi warn | cut -c1-240
cp gptablate/model/hyperstep.py $OUT/ex_hyperstep.py
grep -A4 "^TUNING = {" gptablate/model/hyperstep.py; grep "^STAGES" gptablate/model/hyperstep.py
echo "[t=$((SECONDS-T0))s]"
for i in 1; do
  timeout -k 5 $((560 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
      2>&1 | tail -2 | cut -c1-200
  echo "[t=$((SECONDS-T0))s]"
done
