#!/usr/bin/env bash
# Device call GT (one H100): which side of bf16 streams costs hyper its loss. hyper with fp32 streams trained 300 steps
# at seed 1 (as GM), every step's streams rounded to bf16 by rounding_sides.py: their values only (fwd), their gradients
# only (bwd), both (what arch.hyper.stream_dtype=bfloat16 stores; GM: 2.8615, fp32 streams 2.8398).
source "$(dirname "$0")/common.sh" gt
for side in fwd bwd both; do
  RUN="python3 scripts/device/rounding_sides.py $side" trained_steps 300 "hyper_${side}_1" 170 \
    --set arch.residual=hyper --set train.seed=1
done
