#!/usr/bin/env bash
# Device call HF (one H100): every test the CPU skips ("needs CUDA and Triton": the kernels' GPU checks and the models
# with the kernels against their per-site code), run on the GPU with the current code.
source "$(dirname "$0")/common.sh" hf
gpu_tests 540 -rs tests/test_addnorm.py tests/test_aggregate.py tests/test_hyperstep.py tests/test_loss.py \
  tests/test_mhcstep.py tests/test_qkvproj.py tests/test_sinkhorn.py -k gpu
grep -E "passed|failed|SKIPPED" "$OUT/hf_tests.txt" | head -12
