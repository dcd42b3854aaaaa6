#!/usr/bin/env bash
# Device call GR (one H100, GQ's machine): GQ's seed-1 run again (it ran past its 150 s limit on a cold machine after
# step 200): hyper with bf16 streams rounded stochastically (stochastic_rounding.patch applied, GPTABLATE_STREAM_SR=1),
# 300 steps at seed 1.
source "$(dirname "$0")/common.sh" gr
export GPTABLATE_STREAM_SR=1
trained_steps 300 sr_1 240 --set arch.residual=hyper --set arch.hyper.stream_dtype=bfloat16 --set train.seed=1
