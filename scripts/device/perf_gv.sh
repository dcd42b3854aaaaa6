#!/usr/bin/env bash
# Device call GV (one H100, GU's machine): GM's and GN's 300-step runs again, same seeds and settings, for the spread of
# a run against itself: GT and GU had trained the same rounded configuration at seed 1 to 2.8363 and 2.8566. hyper with
# fp32 streams and with bf16 streams, at seeds 1 and 2 (GM: 2.8398 and 2.8615; GN: 2.8095 and 2.8399).
source "$(dirname "$0")/common.sh" gv
for seed in 1 2; do
  for dtype in float32 bfloat16; do
    trained_steps 300 "hyper_${dtype}_$seed" 150 --set arch.residual=hyper --set arch.hyper.stream_dtype=$dtype \
      --set train.seed=$seed
  done
done
