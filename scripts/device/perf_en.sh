#!/usr/bin/env bash
# Device call EN (one H100): (1) the GPU kernel check again, its u rows scaled so that the scores stay near ±1.5 (EM's
# failed at 1,600 features and 97 sites on an overflow of exp(r s - lse) in fp32, from random stats); (2)
# profile_step.py of attnres full's folded step with the longest idle gaps (EM: 144.97 ms a step wall, 140.26 busy).
source "$(dirname "$0")/common.sh" en
timeout -k 5 300 python3 tests/aggregate_kernel_check.py > $OUT/en_check.txt 2>&1
echo "check rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/en_check.txt | cut -c1-400
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 3 --gaps 25 \
    "arch.residual=attnres,arch.attnres.mode=full" > $OUT/en_profile.txt 2>&1
echo "profile rc=$?  [t=$((SECONDS-T0))s]"; grep -v "^-\|^ *Name" $OUT/en_profile.txt | cut -c1-230 | tail -60
