#!/usr/bin/env bash
# Device call DR (one H100): call DQ found the many kernels slower than the held ones (25 sources: forward 3.14 against
# 2.72 ms, backward 5.40 against 3.90; at 2 warps, groups of 8). Their sweep again with groups of 1, 2, 4 and 8, one
# warp or two, and the group loop software-pipelined (3 stages) or not; the fastest written into aggregate.py and held
# against many at 5, 9, 13 and 25 sources.
source "$(dirname "$0")/common.sh" dr
timeout -k 5 $((560 - SECONDS + T0)) python3 scripts/device/aggregate_bench.py --many 25 --write-best 2>&1 \
    | grep -vi warn | cut -c1-260
echo "sweep rc=$?  [t=$((SECONDS-T0))s]"
grep -n "^AGG_GROUP\|^AGG_MANY" gptablate/model/aggregate.py
