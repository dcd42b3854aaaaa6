#!/usr/bin/env bash
# Device call FF (one H100): hyper_step's projection weight gradient as its own kernel (one pass over H', fp32 FMAs,
# per-program sums) against the TF32 matmul it replaces, swept and the fastest shape written into WGRAD
# (wgrad_bench.py); then hyper's step at 124M.
source "$(dirname "$0")/common.sh" ff
timeout -k 5 240 python3 scripts/device/wgrad_bench.py --write-best 2>&1 | grep -vi warn | cut -c1-200
echo "[t=$((SECONDS-T0))s]"; grep -n "^WGRAD" gptablate/model/hyperstep.py
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
    2>&1 | grep -vi warn | tail -3
echo "[t=$((SECONDS-T0))s]"
