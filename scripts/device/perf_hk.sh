#!/usr/bin/env bash
# Device calls HK, HL, HM (one H100 each call): `perf_hk.sh SEED`. Whether bf16 streams cost hyper validation loss at
# 1,000 steps, at more seeds than GX to GZ's three (seeds 1-3: -0.054, +0.023, +0.019): hyper with fp32 and with bf16
# streams trained 1,000 steps at SEED on pysrc (warmup 100, validation on 1M tokens at the end), same seed and data.
source "$(dirname "$0")/common.sh" "hk$1"
for dtype in float32 bfloat16; do
  trained_steps 1000 "hyper_${dtype}_1k_$1" 280 --set arch.residual=hyper --set arch.hyper.stream_dtype=$dtype \
    --set train.seed="$1"
done
