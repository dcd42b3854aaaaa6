#!/usr/bin/env bash
# Device call GU (one H100, GT's machine): the gradients of GT's last checkpoint (hyper, fp32 streams, 300 steps, their
# values and gradients rounded as bf16) taken with bf16 streams on the kernels and with fp32 streams rounded alike
# (bf16_grads.py); then GT's rounded training at seed 2 (GN: bf16 streams 2.8399, fp32 2.8095).
source "$(dirname "$0")/common.sh" gu
ckpt=$(ls -td /tmp/gruns/*/ 2>/dev/null | head -1)checkpoint.pt
if [ ! -f "$ckpt" ]; then
  RUN="python3 scripts/device/rounding_sides.py both" trained_steps 300 hyper_both_1 170 --set arch.residual=hyper \
    --set train.seed=1
  ckpt=$(ls -td /tmp/gruns/*/ | head -1)checkpoint.pt
fi
timeout -k 5 150 python3 scripts/device/bf16_grads.py "$ckpt" "$GPTABLATE_DATA/pysrc" --batch 8 > "$OUT/gu_grads.txt" 2>&1
echo "bf16_grads rc=$?"; cat "$OUT/gu_grads.txt" | cut -c1-110; echo "[t=$((SECONDS-T0))s]"
RUN="python3 scripts/device/rounding_sides.py both" trained_steps 300 hyper_both_2 170 --set arch.residual=hyper \
  --set train.seed=2
