#!/usr/bin/env bash
# Device call EG (one H100): the pull kernel swept at 1.5B's rows (16,384 tokens x 1,600, 25 sites), writing
# AGG_PULL's 1,600 entry (the 768 entry's until now), and every site's backward pulled against returned.
source "$(dirname "$0")/common.sh" eg
timeout -k 5 240 python3 scripts/device/aggregate_bench.py --pull 25 --shape 16384,1600 --write-best \
    > $OUT/eg_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; grep -E "fastest|a step|wrote|False|site (0|1|12|24) " $OUT/eg_pull.txt | cut -c1-200
grep -E "16, 1, 3\)|\(16, 2, 3\)|\(8, 1, 3\)" $OUT/eg_pull.txt | cut -c1-160
