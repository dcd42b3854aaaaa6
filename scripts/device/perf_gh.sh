#!/usr/bin/env bash
# Device call GH (one H100, GG's machine): GG's GPU test of bf16 streams again (its noise had been drawn on the CPU and
# added to CUDA parameters; tests/fused.py now moves it), with hyper's other model-level GPU tests (as first run, its
# -k "gpu and not kernels_match" left out the model test: 2 passed).
source "$(dirname "$0")/common.sh" gh
gpu_tests 200 tests/test_hyperstep.py -k "gpu and not reference"
