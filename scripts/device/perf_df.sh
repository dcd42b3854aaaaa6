#!/usr/bin/env bash
# Device call DF (one H100): attnres's aggregation kernels with a branch-free token loop, pipelined (tl.range stages)
# where a token's sources are held in registers (up to AGG_HOLD = 8; compiled for sm_90 at 2 stages: cp.async for the
# sources' rows, 10 KB of shared memory a program forward, 23 KB backward at 5 sources). aggregate_bench.py's sweep
# with stages, the fastest written; every source count against the code before (.dev/ab/agg_head.py); the GPU check;
# attnres against the baseline. Ran with commit 642115e's aggregate.py and aggregate_bench.py (the stages sweep and
# --against); the experiment was removed after it (docs/performance.md), so this script needs that commit.
source "$(dirname "$0")/common.sh" df
timeout -k 5 240 python3 scripts/device/aggregate_bench.py --write-best --against .dev/ab/agg_head.py 2>&1 \
    | grep -vi warn | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 100 python3 tests/aggregate_kernel_check.py 2>&1 | tail -1 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
grep -n "^AGG_FWD" gptablate/model/aggregate.py
timeout -k 5 $((590 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres --json $OUT/df_bench.json > $OUT/df_bench.txt 2>&1
echo "bench rc=$?"; tail -4 $OUT/df_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
