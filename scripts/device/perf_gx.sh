#!/usr/bin/env bash
# Device call GX (one H100): whether bf16 streams' loss gap outlasts 300 steps. hyper with fp32 and with bf16 streams
# trained 1,000 steps at seed 1 on pysrc (warmup 100, validation on 1M tokens at the end), same seed and data.
source "$(dirname "$0")/common.sh" gx
for dtype in float32 bfloat16; do
  trained_steps 1000 "hyper_${dtype}_1k" 280 --set arch.residual=hyper --set arch.hyper.stream_dtype=$dtype \
    --set train.seed=1
done
