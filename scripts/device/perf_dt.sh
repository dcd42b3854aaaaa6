#!/usr/bin/env bash
# Device call DT (one H100): attnres full at 1.5B's and 345M's widths (12 of their layers: sites of up to 25 sources,
# past 8 on the many kernels, whose one warp the row's chunks double at 1,600), each against its baseline in the same
# process, as calls DL to DP measured the other multi-stream variants.
source "$(dirname "$0")/common.sh" dt
timeout -k 5 290 gptablate bench gpt2_1.5b --steps 8 --all-variants --variant residual=attnres-full \
    --set model.n_layer=12 --set train.batch_size=16 --json $OUT/dt_1.5b.json > $OUT/dt_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/dt_1.5b.txt | cut -c1-230
timeout -k 5 $((560 - SECONDS + T0)) gptablate bench gpt2_345m --steps 8 --all-variants \
    --variant residual=attnres-full --set model.n_layer=12 --set train.batch_size=30 --json $OUT/dt_345m.json \
    > $OUT/dt_345m.txt 2>&1
echo "345M rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/dt_345m.txt | cut -c1-230
