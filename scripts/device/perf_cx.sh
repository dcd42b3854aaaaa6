#!/usr/bin/env bash
# Device call CX (one H100): hyper_static_step's forward with its 2-byte rows narrowed (kernels.narrow; its H' store no
# longer through shared memory) against the code before (.dev/ab/static_head.py); both kernel checks; hyper and hyper
# static in the step; the hyper GPU tests.
source "$(dirname "$0")/common.sh" cx
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
timeout -k 5 150 python3 tests/hyperstatic_kernel_check.py 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/hyperstep_ab.py --static head=.dev/ab/static_head.py \
    committed=gptablate/model/hyperstatic.py 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 240 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
    --variant residual=hyper-static 2>&1 | tail -3 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/cx_tests.txt 2>&1
tail -1 $OUT/cx_tests.txt; grep -E "^E  " $OUT/cx_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
