#!/usr/bin/env bash
# Device call HF (one H100): every test the CPU skips ("needs CUDA and Triton": the kernels' GPU checks and the models
# with the kernels against their per-site code), run on the GPU with the current code. The first try ran 6 of them in
# its 540 s (a cold machine, pytest -q); this one names each test as it ends and gives the durations.
source "$(dirname "$0")/common.sh" hf
gpu_tests 560 -v -rs --durations=25 tests/test_addnorm.py tests/test_aggregate.py tests/test_hyperstep.py \
  tests/test_loss.py tests/test_mhcstep.py tests/test_qkvproj.py tests/test_sinkhorn.py -k gpu
grep -E "PASSED|FAILED|ERROR|SKIPPED|passed|failed|^[0-9.]+s call" "$OUT/hf_tests.txt" | cut -c1-160 | head -50
