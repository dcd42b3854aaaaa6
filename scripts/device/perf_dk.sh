#!/usr/bin/env bash
# Device call DK (one H100): the row kernels at 1.5B's width (1,600 features: 16 chunks of 128, where the tuned shapes
# were for 8). hyper_step's kernels at 1.5B's micro-batch of streams (16,384 x 4 x 1,600): the code before
# (.dev/ab/head/hyperstep.py: TUNING's warps as they are) against the working tree's (warps scaled to the row by
# kernels.row_warps), each swept over 4, 8 and 16 warps; the same for hyperstatic.py's forward with the norm; the
# aggregation kernels' sweep at that width (its rows say with how many warps they launched). hyperstatic.py scaled its
# forward's warps in this call's working tree; that was not kept (no faster), so its two copies are the same code now.
source "$(dirname "$0")/common.sh" dk
timeout -k 5 330 python3 scripts/device/hyperstep_ab.py head=.dev/ab/head/hyperstep.py \
    scaled=gptablate/model/hyperstep.py --shape 16384,1600 --warps 4,8,16 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 90 python3 scripts/device/hyperstep_ab.py --static head=.dev/ab/head/hyperstatic.py \
    scaled=gptablate/model/hyperstatic.py --shape 16384,1600 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((580 - SECONDS + T0)) python3 scripts/device/aggregate_bench.py --shape 16384,1600 2>&1 \
    | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
