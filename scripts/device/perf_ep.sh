#!/usr/bin/env bash
# Device call EP (one H100): (1) attnres full's 124M step again, 30 steps (EO: 1.245x, EL: 1.257x); (2) the folded
# norm's backward and (3) the pull swept at 1.5B's rows (16,384 x 1,600), written for the rest of the call; (4) attnres
# full at 1.5B's width, 12 layers, with them (EO: 1.154x at the 768 entries and 1,600's token pull).
source "$(dirname "$0")/common.sh" ep
timeout -k 5 200 gptablate bench gpt2_124m --steps 30 --all-variants --variant residual=attnres-full \
    --json $OUT/ep_124m.json > $OUT/ep_124m.txt 2>&1
echo "124M rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/ep_124m.txt | cut -c1-230
cd scripts/device
timeout -k 5 80 python3 aggregate_bench.py --norm 25 --shape 16384,1600 --write-best > $OUT/ep_norm.txt 2>&1
echo "norm rc=$?  [t=$((SECONDS-T0))s]"; grep "fastest\|pull at\|many forward\|inductor" $OUT/ep_norm.txt | cut -c1-170
timeout -k 5 120 python3 aggregate_bench.py --pull 25 --shape 16384,1600 --write-best > $OUT/ep_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; grep "site 1 of\|fastest\|step's" $OUT/ep_pull.txt | cut -c1-170; cd ../..
grep -n "^AGG_PULL\|^AGG_NORM" gptablate/model/aggregate.py
timeout -k 5 $((570 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 8 --all-variants \
    --variant residual=attnres-full --set model.n_layer=12 --set train.batch_size=16 --json $OUT/ep_1.5b.json \
    > $OUT/ep_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/ep_1.5b.txt | cut -c1-250
