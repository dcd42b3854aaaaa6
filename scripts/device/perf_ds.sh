#!/usr/bin/env bash
# Device call DS (one H100): attnres full at the real size (12 layers, the recipe's 60-sequence step) with its sites past
# 8 sources on the many kernels at call DR's tuning (AGG_GROUP 1, one warp, 16 programs an SM, 3 stages); the GPU
# check once more at that tuning; then the step against the baseline in the same process.
source "$(dirname "$0")/common.sh" ds
timeout -k 5 150 python3 tests/aggregate_kernel_check.py 2>&1 | grep -vi warn | tail -3
echo "check rc=$?  [t=$((SECONDS-T0))s]"
timeout -k 5 $((570 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --json $OUT/ds_bench.json > $OUT/ds_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -6 $OUT/ds_bench.txt | cut -c1-230
