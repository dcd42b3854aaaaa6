#!/usr/bin/env bash
# Device call DM (one H100): the GPU kernel checks of hyper_step (now with 1.5B's 1,600-wide rows, at twice the warps)
# and of the aggregation (its 1,600-wide case, now at twice the warps); then the other multi-stream variants at 1.5B's
# width in the step, as call DL did hyper and attnres (12 of its layers, a micro-step of 16 sequences).
source "$(dirname "$0")/common.sh" dm
timeout -k 5 200 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 tests/aggregate_kernel_check.py 2>&1 | tail -1 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 8 --all-variants \
    --variant residual=hyper-static --variant residual=mhc --variant residual=denseformer \
    --set model.n_layer=12 --set train.batch_size=16 --json $OUT/dm_bench.json > $OUT/dm_bench.txt 2>&1
echo "bench rc=$?"; tail -5 $OUT/dm_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
