#!/usr/bin/env bash
# Device call FI (one H100): hyper (dynamic) trained 100 steps on real tokens with hyper_step's kernels (constant masks,
# the weight gradient's own kernel; arch.hyper.kernel=fused) and with the per-site code (kernel=torch), same seed and
# data: the kernels' numerics in training, not only in the checks (CG did this for hyper static).
source "$(dirname "$0")/common.sh" fi
kernels_against_torch hyper 240
