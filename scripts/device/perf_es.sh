#!/usr/bin/env bash
# Device call ES (one H100): the pull reading each site's score of its source, saved by the site's forward, in place of
# the sum x·u_j (ER's probe: 1.137 -> 0.912 ms): (1) the pull swept again and written (`--pull 25 --write-best`);
# (2) attnres full's 124M step, 30 steps (EQ: 1.244x, 143.4 against 115.3 ms); (3) the GPU kernel check.
source "$(dirname "$0")/common.sh" es
cd scripts/device
timeout -k 5 150 python3 aggregate_bench.py --pull 25 --write-best > $OUT/es_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; grep "site 1 of\|fastest\|step's" $OUT/es_pull.txt | cut -c1-170; cd ../..
grep -n "^AGG_PULL" gptablate/model/aggregate.py
timeout -k 5 200 gptablate bench gpt2_124m --steps 30 --all-variants --variant residual=attnres-full \
    --json $OUT/es_124m.json > $OUT/es_124m.txt 2>&1
echo "124M rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/es_124m.txt | cut -c1-230
timeout -k 5 $((580 - SECONDS + T0)) python3 tests/aggregate_kernel_check.py > $OUT/es_check.txt 2>&1
echo "check rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/es_check.txt | cut -c1-400
