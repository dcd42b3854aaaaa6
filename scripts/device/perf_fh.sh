#!/usr/bin/env bash
# Device call FH (one H100): hyper at 345M's real size (24 layers x 1,024, the recipe's step), not measured before.
source "$(dirname "$0")/common.sh" fh
timeout -k 5 580 gptablate bench gpt2_345m --steps 12 --all-variants --variant residual=hyper 2>&1 | grep -vi warn \
    | tail -3
echo "[t=$((SECONDS-T0))s]"
