#!/usr/bin/env bash
# Device call GB (one H100): where hyper's step goes beyond its kernels, with bf16 and fp32 streams, against the
# baseline: the 12-layer step at micro-batch 60 profiled (GPU time by kind, every kernel to a CSV per spec).
source "$(dirname "$0")/common.sh" gb
timeout -k 5 560 python3 scripts/profile_step.py --layers 12 --micro 60 --top 30 --csv "$OUT/gb_kernels.csv" "" \
  "arch.residual=hyper,arch.hyper.stream_dtype=bfloat16" "arch.residual=hyper" > "$OUT/gb_profile.txt" 2>&1
echo "rc=$?"
grep -E "^====|^  [a-z]" "$OUT/gb_profile.txt" | cut -c1-160
echo "[t=$((SECONDS-T0))s]"
