#!/usr/bin/env bash
# Device call GM (one H100): hyper with fp32 and with bf16 streams trained 300 steps of the 124M recipe on real tokens
# (the standard library's sources, pysrc; warmup 30 steps, validation at the end), same seed and data, with GL's
# backward; then hyper_step's kernel check on the GPU, run directly (about 4.5 min).
source "$(dirname "$0")/common.sh" gm
src=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$src" --glob '*.py' --name pysrc > "$OUT/gm_prep.txt" 2>&1
tail -1 "$OUT/gm_prep.txt"; echo "[t=$((SECONDS-T0))s]"
for dt in float32 bfloat16; do
  timeout -k 5 150 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set arch.hyper.stream_dtype=$dt --set train.max_iters=300 --set train.warmup_iters=30 \
    --set data.eval_interval=300 --set data.eval_tokens=1048576 --set run.name=hyper_300_$dt > "$OUT/gm_$dt.txt" 2>&1
  echo "hyper $dt rc=$?"; grep -E "^step (10|100|200|290|300)/" "$OUT/gm_$dt.txt" | cut -c1-120
  grep -E "^finished" "$OUT/gm_$dt.txt" | cut -c1-110; echo "[t=$((SECONDS-T0))s]"
done
cd tests && timeout -k 5 $((585 - SECONDS + T0)) python3 hyperstep_kernel_check.py > "$OUT/gm_check.txt" 2>&1
echo "kernel check rc=$?"; tail -2 "$OUT/gm_check.txt" | cut -c1-300; echo "[t=$((SECONDS-T0))s]"
