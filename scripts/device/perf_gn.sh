#!/usr/bin/env bash
# Device call GN (one H100, GM's machine): GM's 300-step runs at seed 2, hyper with fp32 and with bf16 streams, and the
# baseline (vanilla residual) at seed 1, for the seeds' spread against GM's gap (val 2.8398 fp32, 2.8615 bf16 at seed 1).
source "$(dirname "$0")/common.sh" gn
for run in "hyper float32 2" "hyper bfloat16 2" "vanilla float32 1"; do
  set -- $run
  trained_steps 300 "$1_$2_$3" 150 --set arch.residual=$1 \
    $([ "$1" = hyper ] && echo "--set arch.hyper.stream_dtype=$2") --set train.seed=$3
done
