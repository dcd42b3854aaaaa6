#!/usr/bin/env bash
# Device call FO (one H100): the kernels at the streams they take in training. The 124M recipe's step is 5 micro-batches
# of 12 sequences, so hyper_step and mhc_step run on 12,288 tokens a call, where their tuning was swept on 61,440 (in
# call FN's profile hyper's forward took 181 us a call, 0.90 ms for 61,440 tokens, against 0.72 ms swept at 61,440).
# hyper_step at 12,288 x 4 x 768 by tokens a program and its stages and caps at 2 warps; mhc_step there with its
# shapes swept; FN's profile of mhc's step again (its head was cut off), whole in $OUT/fo_profile.txt.
source "$(dirname "$0")/common.sh" fo
timeout -k 5 150 python3 scripts/device/hyperstep_ab.py c=gptablate/model/hyperstep.py --shape 12288,768 --warps 2 \
    --tokens 2,4,8,16,32 2>&1 | grep -vi warn | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/mhcstep_ab.py c=gptablate/model/mhcstep.py --shape 12288,768 --sweep c \
    --rounds 3 2>&1 | grep -vi warn | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((570 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 12 --top 25 \
    "arch.residual=mhc" > $OUT/fo_profile.txt 2>&1
grep -E "^====|^  [a-z]" $OUT/fo_profile.txt | head -14; grep -E "_kernel|triton_|nvjet" $OUT/fo_profile.txt | \
    awk '{print $1, $(NF-3), $(NF-1)}' | head -25
echo "[t=$((SECONDS-T0))s]"
