#!/usr/bin/env bash
# Device call DW (one H100): attnres full's many sites passing their sources' running gradients on (aggregate.py's
# _Carried), and every aggregation's backward writing into tensors it is given: the aggregation tests and the GPU
# kernel check (with carried gradients), the many kernels with and without carried gradients at the 124M step's
# largest site, then attnres full's and attnres's steps against the baseline in the same process (peak memory: DS had
# attnres full at 1.225x the baseline's).
source "$(dirname "$0")/common.sh" dw
timeout -k 5 240 python3 -m pytest -q -p no:cacheprovider tests/test_aggregate.py 2>&1 | tail -3
echo "tests rc=$?  [t=$((SECONDS-T0))s]"
timeout -k 5 90 python3 scripts/device/aggregate_bench.py --many 25 --committed 2>&1 | grep -v Warn | tail -4
echo "kernels rc=$?  [t=$((SECONDS-T0))s]"
timeout -k 5 $((575 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --variant residual=attnres --json $OUT/dw_bench.json > $OUT/dw_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -7 $OUT/dw_bench.txt | cut -c1-230
