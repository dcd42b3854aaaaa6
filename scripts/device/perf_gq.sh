#!/usr/bin/env bash
# Device call GQ (one H100): an experiment, not committed code: hyper_step's bf16 stores of H' (forward) and dH
# (backward) rounded stochastically (scripts/device/stochastic_rounding.patch applied to the call's working tree, `git
# apply`, at commit 0903b91; GPTABLATE_STREAM_SR=1: the low 16 bits rounded up with the probability of their
# fraction, the random bits a hash of the element's index and kept bits). hyper with
# bf16 streams trained 300 steps at seeds 1 and 2 as GM and GN (round to nearest: 2.8615 and 2.8399; fp32 streams
# 2.8398 and 2.8095); then the step.
source "$(dirname "$0")/common.sh" gq
export GPTABLATE_STREAM_SR=1
for seed in 1 2; do
  trained_steps 300 "sr_$seed" 150 --set arch.residual=hyper --set arch.hyper.stream_dtype=bfloat16 \
    --set train.seed=$seed
done
bench_variants 200 residual=hyper-bf16
