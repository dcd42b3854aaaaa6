#!/usr/bin/env bash
# Device call GC (one H100): hyper's weight gradient with bf16 streams on the tensor cores (_hyper_wgrad_dot_kernel):
# its shapes swept against the fp32 kernel on the same bf16 H' (wgrad_bench.py --streams bf16 --write-best, which
# writes WGRAD_DOT), then the step with bf16 streams at the best shape.
source "$(dirname "$0")/common.sh" gc
timeout -k 5 240 python3 scripts/device/wgrad_bench.py --streams bf16 --write-best > "$OUT/gc_wgrad.txt" 2>&1
echo "wgrad_bench rc=$?"
head -1 "$OUT/gc_wgrad.txt"
grep "^  (" "$OUT/gc_wgrad.txt" | sort -t: -k2,2 -g | head -8
tail -2 "$OUT/gc_wgrad.txt"
grep -n "^WGRAD_DOT" gptablate/model/hyperstep.py
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --json "$OUT/gc_bench.json" > "$OUT/gc_bench.txt" 2>&1
echo "bench rc=$?"; tail -6 "$OUT/gc_bench.txt"
echo "[t=$((SECONDS-T0))s]"
