#!/usr/bin/env bash
# Device call GS (one H100, GQ's machine): GQ's runs with only the forward's stores of H' rounded stochastically
# (stochastic_rounding.patch applied, GPTABLATE_STREAM_SR=fwd; dH rounded to nearest), 300 steps at seeds 1 and 2.
source "$(dirname "$0")/common.sh" gs
export GPTABLATE_STREAM_SR=fwd
for seed in 1 2; do
  trained_steps 300 "srf_$seed" 150 --set arch.residual=hyper --set arch.hyper.stream_dtype=bfloat16 \
    --set train.seed=$seed
done
