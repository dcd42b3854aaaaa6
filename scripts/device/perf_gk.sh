#!/usr/bin/env bash
# Device call GK (one H100): the code after the session's refactors (hyperstep._row_grid, dot_operand): the step with
# bf16 streams a third time, hyper's GPU kernel check run directly, and the GPU test of bf16 streams.
source "$(dirname "$0")/common.sh" gk
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --json "$OUT/gk_bench.json" > "$OUT/gk_bench.txt" 2>&1
echo "bench rc=$?"; tail -3 "$OUT/gk_bench.txt"
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 320 python3 tests/hyperstep_kernel_check.py > "$OUT/gk_check.txt" 2>&1
echo "kernel check rc=$?"; tail -2 "$OUT/gk_check.txt" | cut -c1-300
echo "[t=$((SECONDS-T0))s]"
gpu_tests 60 tests/test_hyperstep.py -k "bf16 and gpu"
