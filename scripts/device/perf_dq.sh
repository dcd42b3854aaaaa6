#!/usr/bin/env bash
# Device call DQ (one H100): aggregate.py's many kernels (past AGG_HOLD sources: a run-time loop over a table of the
# sources, a running softmax forward, one read a source backward). The GPU check (held and many kernels, up to 97
# sources at 1,600 features), then the many kernels' sweep at attnres full's largest 124M site (25 sources, 61,440 x
# 768), the fastest written into aggregate.py, and held against many at 5, 9, 13 and 25 sources.
source "$(dirname "$0")/common.sh" dq
timeout -k 5 180 python3 tests/aggregate_kernel_check.py 2>&1 | grep -vi warn | tail -4
echo "check rc=$?  [t=$((SECONDS-T0))s]"
timeout -k 5 $((520 - SECONDS + T0)) python3 scripts/device/aggregate_bench.py --many 25 --write-best 2>&1 \
    | grep -vi warn | cut -c1-260
echo "sweep rc=$?  [t=$((SECONDS-T0))s]"
grep -n "^AGG_GROUP\|^AGG_MANY" gptablate/model/aggregate.py
