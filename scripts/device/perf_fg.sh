#!/usr/bin/env bash
# Device call FG (one H100): the weight-gradient kernel with each step's dz rows as one tile and one wave of programs
# (WGRAD: programs an SM), swept and written; the GPU tests (the kernel check with the weight gradient's, the model
# test against float64); hyper's step at 124M.
source "$(dirname "$0")/common.sh" fg
timeout -k 5 150 python3 scripts/device/wgrad_bench.py --write-best 2>&1 | grep -vi warn | cut -c1-200
echo "[t=$((SECONDS-T0))s]"; grep -n "^WGRAD" gptablate/model/hyperstep.py
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 330 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/fg_tests.txt 2>&1
tail -1 $OUT/fg_tests.txt; grep -E "^E  " $OUT/fg_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((590 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
    2>&1 | grep -vi warn | tail -3
echo "[t=$((SECONDS-T0))s]"
