#!/usr/bin/env bash
# Device call FA (one H100): hyper_step's row in parts, the warps past 768 features by hyperstep.launch_warps (8 at
# 1,600, 2 parts): the GPU tests (the model test now against the per-site code in float64), the code before against
# the parts at 1.5B's streams (16,384 x 4 x 1,600), the 124M step, and 12 of 1.5B's layers.
source "$(dirname "$0")/common.sh" fa
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 330 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/fa_tests.txt 2>&1
tail -1 $OUT/fa_tests.txt; grep -E "^E  " $OUT/fa_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 100 python3 scripts/device/hyperstep_ab.py head=.dev/ab/hyperstep_head.py \
    parts=gptablate/model/hyperstep.py --warps 2 --shape 16384,1600 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper 2>&1 | tail -2 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 8 --all-variants --variant residual=hyper \
    --set model.n_layer=12 --set train.batch_size=16 2>&1 | tail -2 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
