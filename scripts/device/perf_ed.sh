#!/usr/bin/env bash
# Device call ED (one H100): the pull kernel's time by part (pull_probes.py's copies, which leave out each site's u_j
# row or its score's sum, timed beside the committed kernel by pull_ab.py, with a few tunings), the aggregation
# tests on the GPU (kernel check included) since the carriers were removed, and attnres full's 124M step again.
source "$(dirname "$0")/common.sh" ed
python3 scripts/device/pull_probes.py /tmp/probes > /dev/null
cd scripts/device && timeout -k 5 150 python3 pull_ab.py committed=../../gptablate/model/aggregate.py \
    u_once=/tmp/probes/u_once.py no_s=/tmp/probes/no_s.py both=/tmp/probes/both.py \
    --tunings 16,1,4 8,1,4 > $OUT/ed_ab.txt 2>&1; echo "ab rc=$?  [t=$((SECONDS-T0))s]"; cd ../..
grep -E "committed|16, 1, 4" $OUT/ed_ab.txt | cut -c1-150
timeout -k 5 240 python3 -m pytest -q tests/test_aggregate.py > $OUT/ed_tests.txt 2>&1
echo "tests rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/ed_tests.txt
timeout -k 5 $((590 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --json $OUT/ed_bench.json > $OUT/ed_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/ed_bench.txt | cut -c1-230
