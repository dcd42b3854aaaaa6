#!/usr/bin/env bash
# Device call ET (one H100), after ES (the pull reading the saved scores; attnres full 1.208x): (1) the pull swept at
# 1.5B's rows (16,384 x 1,600) and written; (2) attnres full's 124M step again, 30 steps; (3) at 1.5B's width, 12
# layers (EP: 1.148x); (4) at 345M (24 layers, 49 sites; 1.390x before the folded norms, call EF's time).
source "$(dirname "$0")/common.sh" et
cd scripts/device
timeout -k 5 100 python3 aggregate_bench.py --pull 25 --shape 16384,1600 --write-best > $OUT/et_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; grep "fastest\|step's" $OUT/et_pull.txt | cut -c1-170; cd ../..
grep -n "^AGG_PULL" gptablate/model/aggregate.py
timeout -k 5 170 gptablate bench gpt2_124m --steps 30 --all-variants --variant residual=attnres-full \
    --json $OUT/et_124m.json > $OUT/et_124m.txt 2>&1
echo "124M rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/et_124m.txt | cut -c1-230
timeout -k 5 170 gptablate bench gpt2_1.5b --steps 8 --all-variants --variant residual=attnres-full \
    --set model.n_layer=12 --set train.batch_size=16 --json $OUT/et_1.5b.json > $OUT/et_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/et_1.5b.txt | cut -c1-250
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_345m --steps 10 --all-variants \
    --variant residual=attnres-full --json $OUT/et_345m.json > $OUT/et_345m.txt 2>&1
echo "345M rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/et_345m.txt | cut -c1-250
