#!/usr/bin/env bash
# Device call GL (one H100): hyper_step's backward with fewer instructions a token (the streams' norm backward folded
# into two per-token constants, x̂ not formed; dH' formed part by part where H' is used last). The kernels of the code
# before (.dev/ab/hyperstep_e4a.py, commit e4a7aba) and after, side by side (hyperstep_ab.py at 2 warps, 5 rounds), bf16
# and fp32 streams; then the step, hyper with either dtype.
source "$(dirname "$0")/common.sh" gl
hyperstep_against .dev/ab/hyperstep_e4a.py 170 bf16 fp32
bench_variants 240 residual=hyper-bf16 residual=hyper
