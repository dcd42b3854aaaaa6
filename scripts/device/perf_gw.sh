#!/usr/bin/env bash
# Device call GW (one H100, GV's machine, its last minutes): GT's one-sided roundings at seed 2, fp32 streams whose
# values only (fwd) or gradients only (bwd) are rounded to bf16 at every step (GT at seed 1: 2.8466 and 2.8380).
source "$(dirname "$0")/common.sh" gw
for side in fwd bwd; do
  RUN="python3 scripts/device/rounding_sides.py $side" trained_steps 300 "hyper_${side}_2" 175 \
    --set arch.residual=hyper --set train.seed=2
done
