#!/usr/bin/env bash
# Device call GZ (one H100): GX at seed 3, hyper with fp32 and with bf16 streams trained 1,000 steps.
source "$(dirname "$0")/common.sh" gz
for dtype in float32 bfloat16; do
  trained_steps 1000 "hyper_${dtype}_1k_3" 280 --set arch.residual=hyper --set arch.hyper.stream_dtype=$dtype \
    --set train.seed=3
done
