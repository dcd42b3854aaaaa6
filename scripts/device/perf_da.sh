#!/usr/bin/env bash
# Device call DA (one H100): hyper_step's backward taking B from the write rather than loading it twice (compiled for
# sm_90: 253 registers and no stack, where it had 255 and 24 bytes) against the code before (.dev/ab/pre_review.py);
# the kernel check.
source "$(dirname "$0")/common.sh" da
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
timeout -k 5 200 python3 scripts/device/hyperstep_ab.py before=.dev/ab/pre_review.py \
    committed=gptablate/model/hyperstep.py 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
