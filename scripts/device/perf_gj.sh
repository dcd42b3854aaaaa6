#!/usr/bin/env bash
# Device call GJ (one H100, GG's machine): GB's profile of hyper's step with bf16 streams again, after GD to GF: the
# kernels in the compiled step (the weight gradient's operand A formed by inductor's fused kernels).
source "$(dirname "$0")/common.sh" gj
timeout -k 5 240 python3 scripts/profile_step.py --layers 12 --micro 60 --top 30 --csv "$OUT/gj_kernels.csv" \
  "arch.residual=hyper,arch.hyper.stream_dtype=bfloat16" > "$OUT/gj_profile.txt" 2>&1
echo "rc=$?"
grep -E "^====|^  [a-z]" "$OUT/gj_profile.txt" | cut -c1-160
head -12 "$OUT/gj_kernels.csv" | cut -c1-160
