#!/usr/bin/env bash
# Device call EW (one H100): attnres full at 1.5B's 48 layers (sites of up to 97 sources), micro-batch 8, as EF ran it
# (1.751x the baseline's step, 1.092x its peak memory, pulled), now with its folded norms, the stack's dtype fix, the
# pull in blocks and the pull reading the forward's scores.
source "$(dirname "$0")/common.sh" ew
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 6 --all-variants \
    --variant residual=attnres-full --set train.batch_size=8 --json $OUT/ew_1.5b.json > $OUT/ew_1.5b.txt 2>&1
echo "1.5B rc=$?  [t=$((SECONDS-T0))s]"; tail -4 $OUT/ew_1.5b.txt | cut -c1-230
grep -i -m3 'out of memory\|error' $OUT/ew_1.5b.txt | cut -c1-300
