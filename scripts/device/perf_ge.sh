#!/usr/bin/env bash
# Device call GE (one H100): hyper_step's forward with fewer reductions across warps a token: x_in''s mean from the
# streams' means (every LayerNorm site), and with bf16 streams the streams' statistics in one pass. The kernels of the
# code before (.dev/ab/hyperstep_393.py, commit 393c4ea) and after, side by side (hyperstep_ab.py at 2 warps, 5 rounds),
# fp32 and bf16 streams; then the step, hyper with either dtype (the weight gradient of GD's WGRAD_DOT with it).
source "$(dirname "$0")/common.sh" ge
hyperstep_against .dev/ab/hyperstep_393.py 150 fp32 bf16
bench_variants 280 residual=hyper-bf16 residual=hyper
