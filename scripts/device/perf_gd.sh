#!/usr/bin/env bash
# Device call GD (one H100): hyper's weight gradient with bf16 streams as a plain tl.dot of an operand A = [hi | lo | 0]
# that the backward forms in torch (hyperstep.weight_grad): the kernel's shapes swept (wgrad_bench.py --streams bf16
# --write-best), the step with bf16 streams at the best shape, then hyper's GPU tests (the kernel check, bf16 cases
# with the dot kernel, and the model against its per-site code).
source "$(dirname "$0")/common.sh" gd
timeout -k 5 240 python3 scripts/device/wgrad_bench.py --streams bf16 --write-best > "$OUT/gd_wgrad.txt" 2>&1
echo "wgrad_bench rc=$?"
head -2 "$OUT/gd_wgrad.txt"
grep "^  (" "$OUT/gd_wgrad.txt" | sort -t: -k2,2 -g | head -8
tail -2 "$OUT/gd_wgrad.txt"
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 240 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --json "$OUT/gd_bench.json" > "$OUT/gd_bench.txt" 2>&1
echo "bench rc=$?"; tail -3 "$OUT/gd_bench.txt"
echo "[t=$((SECONDS-T0))s]"
gpu_tests 330 tests/test_hyperstep.py -k gpu
