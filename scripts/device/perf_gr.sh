#!/usr/bin/env bash
# Device call GR (one H100, GQ's machine): GQ's seed-1 run again (it ran past its 150 s limit on a cold machine after
# step 200): hyper with bf16 streams rounded stochastically (stochastic_rounding.patch applied, GPTABLATE_STREAM_SR=1),
# 300 steps at seed 1.
source "$(dirname "$0")/common.sh" gr
export GPTABLATE_STREAM_SR=1
if [ ! -d "$GPTABLATE_DATA/pysrc" ]; then
  src=$(python3 -c 'import sys; print(sys.prefix)')/lib
  python3 -m gptablate_cli prepare text "$src" --glob '*.py' --name pysrc > "$OUT/gr_prep.txt" 2>&1
  tail -1 "$OUT/gr_prep.txt"; echo "[t=$((SECONDS-T0))s]"
fi
timeout -k 5 240 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
  --set arch.hyper.stream_dtype=bfloat16 --set train.seed=1 --set train.max_iters=300 \
  --set train.warmup_iters=30 --set data.eval_interval=300 --set data.eval_tokens=1048576 \
  --set run.name=hyper_300_sr_1 > "$OUT/gr_sr_1.txt" 2>&1
echo "hyper bf16 stochastic seed 1 rc=$?"; grep -E "^step (100|200|290|300)/" "$OUT/gr_sr_1.txt" | cut -c1-120
grep -E "^finished" "$OUT/gr_sr_1.txt" | cut -c1-110; echo "[t=$((SECONDS-T0))s]"
