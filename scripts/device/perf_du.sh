#!/usr/bin/env bash
# Device call DU (one H100): attnres full at 1.5B's whole depth (48 layers: sites of up to 97 sources, one many-kernel
# pair for all past 8), micro-batch 8 so that it fits one GPU: how long its first window takes (compiling) and its step
# against the baseline's.
source "$(dirname "$0")/common.sh" du
timeout -k 5 $((540 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 6 --all-variants \
    --variant residual=attnres-full --set train.batch_size=8 --json $OUT/du_1.5b.json > $OUT/du_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/du_1.5b.txt | cut -c1-230
