#!/usr/bin/env bash
# Device call GL (one H100): hyper_step's backward with fewer instructions a token (the streams' norm backward folded
# into two per-token constants, x̂ not formed; dH' formed part by part where H' is used last). The kernels of the code
# before (.dev/ab/hyperstep_e4a.py, commit e4a7aba) and after, side by side (hyperstep_ab.py at 2 warps, 5 rounds), bf16
# and fp32 streams; then the step, hyper with either dtype.
source "$(dirname "$0")/common.sh" gl
for st in bf16 fp32; do
  timeout -k 5 170 python3 scripts/device/hyperstep_ab.py before=.dev/ab/hyperstep_e4a.py \
    after=gptablate/model/hyperstep.py --warps 2 --rounds 5 --streams $st > "$OUT/gl_ab_$st.txt" 2>&1
  echo "ab $st rc=$?"; grep -E "^(before|after)|best|rounds|own" "$OUT/gl_ab_$st.txt" | cut -c1-200
  echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 240 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --variant residual=hyper --json "$OUT/gl_bench.json" > "$OUT/gl_bench.txt" 2>&1
echo "bench rc=$?"; tail -4 "$OUT/gl_bench.txt"
echo "[t=$((SECONDS-T0))s]"
