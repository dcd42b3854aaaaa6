#!/usr/bin/env bash
# Device call GF (one H100): GE's code with the bf16 streams' forward at 1 stage (STAGES_BF16, the one-pass forward at
# 2 stages took twice as long in GE): the step, hyper with either dtype; then hyper_step's GPU kernel check run directly
# (the forward's reductions, the bf16 streams' one-pass statistics and their weight gradient on the tensor cores).
source "$(dirname "$0")/common.sh" gf
timeout -k 5 280 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --variant residual=hyper --json "$OUT/gf_bench.json" > "$OUT/gf_bench.txt" 2>&1
echo "bench rc=$?"; tail -4 "$OUT/gf_bench.txt"
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 tests/hyperstep_kernel_check.py > "$OUT/gf_check.txt" 2>&1
echo "kernel check rc=$?"; tail -3 "$OUT/gf_check.txt" | cut -c1-300
echo "[t=$((SECONDS-T0))s]"
