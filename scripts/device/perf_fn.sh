#!/usr/bin/env bash
# Device call FN (one H100): where the 12-layer 124M step's GPU time goes for the baseline, mhc and hyper, by kind of
# kernel and the most expensive kernels (profile_step.py, micro-batch 12 as the recipe's, 5 profiled steps), since
# mhc's backward reduces its dot products once a walk (FM).
source "$(dirname "$0")/common.sh" fn
timeout -k 5 560 python3 scripts/profile_step.py --layers 12 --micro 12 --top 30 "" "arch.residual=mhc" \
    "arch.residual=hyper" 2>&1 | grep -vi warn | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
