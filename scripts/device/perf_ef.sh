#!/usr/bin/env bash
# Device call EF (one H100): attnres full at 1.5B's 48 layers (sites of up to 97 sources), micro-batch 8, with its
# backward pulled (DY ran it with the carriers: 2.389x the baseline's step, 1.146x its peak memory, first window 434 s).
source "$(dirname "$0")/common.sh" ef
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 6 --all-variants \
    --variant residual=attnres-full --set train.batch_size=8 --json $OUT/ef_1.5b.json > $OUT/ef_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -4 $OUT/ef_1.5b.txt | cut -c1-230
grep -i -m3 'out of memory\|error' $OUT/ef_1.5b.txt | cut -c1-300
