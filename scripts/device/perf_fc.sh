#!/usr/bin/env bash
# Device call FC (one H100): the committed hyper_step (the per-kernel warps past 768 features, the forward's two
# centrings as one helper) under the machine's Triton: the GPU tests (the kernel check with 1,600-wide rows at the
# forward's 4 warps and the backward's 8, the model test against float64), then the code before against it at the
# 124M step's streams.
source "$(dirname "$0")/common.sh" fc
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 450 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/fc_tests.txt 2>&1
tail -1 $OUT/fc_tests.txt; grep -E "^E  " $OUT/fc_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/device/hyperstep_ab.py head=.dev/ab/hyperstep_head.py \
    parts=gptablate/model/hyperstep.py --warps 2 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
