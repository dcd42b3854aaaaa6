#!/usr/bin/env bash
# Device call EM (one H100), commit after EL's tunings: (1) the GPU kernel check of aggregate.py (the folded norms'
# kernels, the pull by token and in blocks), timed; (2) tests/test_aggregate.py on the GPU; (3) profile_step.py of
# attnres full's folded 12-layer step (where the step's time goes now).
source "$(dirname "$0")/common.sh" em
timeout -k 5 240 python3 tests/aggregate_kernel_check.py > $OUT/em_check.txt 2>&1
echo "check rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/em_check.txt | cut -c1-400
timeout -k 5 200 python3 -m pytest -q -x tests/test_aggregate.py -k "not on_gpu" > $OUT/em_tests.txt 2>&1
echo "tests rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/em_tests.txt | cut -c1-300
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 5 \
    --csv $OUT/em_kernels.csv "arch.residual=attnres,arch.attnres.mode=full" > $OUT/em_profile.txt 2>&1
echo "profile rc=$?  [t=$((SECONDS-T0))s]"; grep "====" -A11 $OUT/em_profile.txt
