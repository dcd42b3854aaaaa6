#!/usr/bin/env bash
# Device call GM (one H100): hyper with fp32 and with bf16 streams trained 300 steps of the 124M recipe on real tokens
# (the standard library's sources, pysrc; warmup 30 steps, validation at the end), same seed and data, with GL's
# backward; then hyper_step's kernel check on the GPU, run directly (about 4.5 min).
source "$(dirname "$0")/common.sh" gm
for dt in float32 bfloat16; do
  trained_steps 300 "$dt" 150 --set arch.residual=hyper --set arch.hyper.stream_dtype=$dt
done
cd tests && timeout -k 5 $((585 - SECONDS + T0)) python3 hyperstep_kernel_check.py > "$OUT/gm_check.txt" 2>&1
echo "kernel check rc=$?"; tail -2 "$OUT/gm_check.txt" | cut -c1-300; echo "[t=$((SECONDS-T0))s]"
