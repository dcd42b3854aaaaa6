#!/usr/bin/env bash
# Device call HB (one H100): target 2's table again: the single-stream residuals and the flags (AE's rows).
source "$(dirname "$0")/common.sh" hb
bench_variants 580 residual=rezero residual=gates residual=layerscale residual=x0 residual=learned_scaling \
  residual=prores residual=laurel residual=laurel-lr qk_norm value_residual
