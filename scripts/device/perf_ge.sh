#!/usr/bin/env bash
# Device call GE (one H100): hyper_step's forward with fewer reductions across warps a token: x_in''s mean from the
# streams' means (every LayerNorm site), and with bf16 streams the streams' statistics in one pass. The kernels of the
# code before (.dev/ab/hyperstep_393.py, commit 393c4ea) and after, side by side (hyperstep_ab.py at 2 warps, 5 rounds),
# fp32 and bf16 streams; then the step, hyper with either dtype (the weight gradient of GD's WGRAD_DOT with it).
source "$(dirname "$0")/common.sh" ge
for st in fp32 bf16; do
  timeout -k 5 150 python3 scripts/device/hyperstep_ab.py before=.dev/ab/hyperstep_393.py \
    after=gptablate/model/hyperstep.py --warps 2 --rounds 5 --streams $st > "$OUT/ge_ab_$st.txt" 2>&1
  echo "ab $st rc=$?"; grep -E "^(before|after)|best|rounds|own" "$OUT/ge_ab_$st.txt" | cut -c1-200
  echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 280 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --variant residual=hyper --json "$OUT/ge_bench.json" > "$OUT/ge_bench.txt" 2>&1
echo "bench rc=$?"; tail -4 "$OUT/ge_bench.txt"
echo "[t=$((SECONDS-T0))s]"
