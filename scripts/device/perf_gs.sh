#!/usr/bin/env bash
# Device call GS (one H100, GQ's machine): GQ's runs with only the forward's stores of H' rounded stochastically
# (stochastic_rounding.patch applied, GPTABLATE_STREAM_SR=fwd; dH rounded to nearest), 300 steps at seeds 1 and 2.
source "$(dirname "$0")/common.sh" gs
export GPTABLATE_STREAM_SR=fwd
if [ ! -d "$GPTABLATE_DATA/pysrc" ]; then
  src=$(python3 -c 'import sys; print(sys.prefix)')/lib
  python3 -m gptablate_cli prepare text "$src" --glob '*.py' --name pysrc > "$OUT/gs_prep.txt" 2>&1
  tail -1 "$OUT/gs_prep.txt"; echo "[t=$((SECONDS-T0))s]"
fi
for seed in 1 2; do
  timeout -k 5 150 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set arch.hyper.stream_dtype=bfloat16 --set train.seed=$seed --set train.max_iters=300 \
    --set train.warmup_iters=30 --set data.eval_interval=300 --set data.eval_tokens=1048576 \
    --set run.name=hyper_300_srf_$seed > "$OUT/gs_srf_$seed.txt" 2>&1
  echo "hyper bf16 stochastic forward seed $seed rc=$?"; grep -E "^step (100|200|290|300)/" "$OUT/gs_srf_$seed.txt" | cut -c1-120
  grep -E "^finished" "$OUT/gs_srf_$seed.txt" | cut -c1-110; echo "[t=$((SECONDS-T0))s]"
done
