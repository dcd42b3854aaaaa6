#!/usr/bin/env bash
# Device call DY (one H100): attnres full at 1.5B's whole depth (48 layers, sites of up to 97 sources), micro-batch 8,
# as call DU ran it (out of memory in its first step), now with the many sites passing their sources' running
# gradients on (aggregate.py's _Carried) and the aggregations' backward writing into tensors they are given.
source "$(dirname "$0")/common.sh" dy
timeout -k 5 $((575 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 6 --all-variants \
    --variant residual=attnres-full --set train.batch_size=8 --json $OUT/dy_1.5b.json > $OUT/dy_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -4 $OUT/dy_1.5b.txt | cut -c1-230
grep -i -m3 'out of memory\|error' $OUT/dy_1.5b.txt | cut -c1-300
