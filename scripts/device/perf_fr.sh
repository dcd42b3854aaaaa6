#!/usr/bin/env bash
# Device call FR (one H100): mhc's step since its read is a kernel of its own and its backward reduces its dot products
# once a walk (FL, FM), at 124M again, at 345M's width (12 layers, micro-batch 30, as call DP) and at 1.5B's (12 layers,
# micro-batch 16, as DL to DO).
source "$(dirname "$0")/common.sh" fr
timeout -k 5 200 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=mhc 2>&1 | grep -vi warn | tail -3
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 190 gptablate bench gpt2_345m --steps 8 --all-variants --variant residual=mhc --set model.n_layer=12 \
    --set train.batch_size=30 2>&1 | grep -vi warn | tail -3
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 8 --all-variants --variant residual=mhc \
    --set model.n_layer=12 --set train.batch_size=16 2>&1 | grep -vi warn | tail -3
echo "[t=$((SECONDS-T0))s]"
