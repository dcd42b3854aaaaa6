#!/usr/bin/env bash
# Device call EU (one H100), the committed tunings (AGG_PULL 768: blocks of 2 on one warp, 1,600: blocks of 2 on 2
# warps): (1) the GPU kernel check; (2) tests/test_aggregate.py on the GPU (its kernel checks left out: (1) is one);
# (3) profile_step.py of attnres full's 12-layer step (where its time goes since the pull reads the scores; EM:
# 144.97 ms wall, 140.26 of kernels, the aggregations 38.88).
source "$(dirname "$0")/common.sh" eu
timeout -k 5 220 python3 tests/aggregate_kernel_check.py > $OUT/eu_check.txt 2>&1
echo "check rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/eu_check.txt | cut -c1-400
timeout -k 5 150 python3 -m pytest -q -x tests/test_aggregate.py -k "not kernels_match" > $OUT/eu_tests.txt 2>&1
echo "tests rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/eu_tests.txt | cut -c1-300
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 8 \
    --csv $OUT/eu_kernels.csv "arch.residual=attnres,arch.attnres.mode=full" > $OUT/eu_profile.txt 2>&1
echo "profile rc=$?  [t=$((SECONDS-T0))s]"; grep "====" -A11 $OUT/eu_profile.txt
