#!/usr/bin/env bash
# Device call EO (one H100), the committed code after EN: attnres full with its folded norms and block pull, (1) the
# 124M step over 30 steps; (2) at 1.5B's width, 12 of its layers (micro-batch 16), as calls DL-DT measured it.
source "$(dirname "$0")/common.sh" eo
timeout -k 5 240 gptablate bench gpt2_124m --steps 30 --all-variants --variant residual=attnres-full \
    --json $OUT/eo_124m.json > $OUT/eo_124m.txt 2>&1
echo "124M rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/eo_124m.txt | cut -c1-230
timeout -k 5 $((560 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 8 --all-variants \
    --variant residual=attnres-full --set model.n_layer=12 --set train.batch_size=16 --json $OUT/eo_1.5b.json \
    > $OUT/eo_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/eo_1.5b.txt | cut -c1-230
