#!/usr/bin/env bash
# Device call EL (one H100), commit ef70051: (1) aggregate_bench.py --norm 25 --write-best (the norm backward with the
# forward's saved means and 1/stds and a pipelined token loop; AGG_NORM swept with stages); (2) --pull 25 --write-best
# (the token kernel's best few against blocks of 2 to 16 tokens); (3) attnres full's 124M step with both written.
source "$(dirname "$0")/common.sh" el
cd scripts/device
timeout -k 5 150 python3 aggregate_bench.py --norm 25 --write-best > $OUT/el_norm.txt 2>&1
echo "norm rc=$?  [t=$((SECONDS-T0))s]"; cut -c1-170 $OUT/el_norm.txt | sort -t: -k2 -n | head -5; tail -8 $OUT/el_norm.txt | cut -c1-170
timeout -k 5 200 python3 aggregate_bench.py --pull 25 --write-best > $OUT/el_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; cd ../..; cut -c1-200 $OUT/el_pull.txt
git diff --stat; git diff gptablate/model/aggregate.py | grep "^[-+]AGG"
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --json $OUT/el_bench.json > $OUT/el_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/el_bench.txt | cut -c1-230
