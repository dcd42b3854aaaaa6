#!/usr/bin/env bash
# Device call DV (one H100, the session's last 320 s): the many kernels' sweep at 1.5B's micro-batch rows (16,384 x
# 1,600, 25 sources), where the committed tuning (from 768-wide rows) launches 2 warps; nothing written.
source "$(dirname "$0")/common.sh" dv
timeout -k 5 $((240 - SECONDS + T0)) python3 scripts/device/aggregate_bench.py --many 25 --shape 16384,1600 2>&1 \
    | grep -vi warn | cut -c1-230
echo "sweep rc=$?  [t=$((SECONDS-T0))s]"
