#!/usr/bin/env bash
# Device call EE (one H100): the pull kernel at 2 tokens a step (each u_j row loaded once for both; one warp, the
# 2-byte rows narrowed) against the kernel before (.dev/ab/aggregate_tb1.py: `git show bb18302:gptablate/model/
# aggregate.py`, carried with the call), then aggregate_bench.py --pull 25's sweep (writing the fastest into
# AGG_PULL) and attnres full's step at it.
source "$(dirname "$0")/common.sh" ee
cd scripts/device && timeout -k 5 150 python3 pull_ab.py before=../../.dev/ab/aggregate_tb1.py \
    now=../../gptablate/model/aggregate.py --tunings 16,1,3,2 16,1,2,2 8,1,3,2 8,1,2,2 16,1,4,2 \
    > $OUT/ee_ab.txt 2>&1; echo "ab rc=$?  [t=$((SECONDS-T0))s]"; cd ../..
cut -c1-120 $OUT/ee_ab.txt
timeout -k 5 200 python3 scripts/device/aggregate_bench.py --pull 25 --write-best > $OUT/ee_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; grep -E "fastest|a step|wrote|False" $OUT/ee_pull.txt | cut -c1-230
timeout -k 5 $((590 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --json $OUT/ee_bench.json > $OUT/ee_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/ee_bench.txt | cut -c1-230
