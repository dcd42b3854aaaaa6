#!/usr/bin/env bash
# Device call GQ (one H100): an experiment, not committed code: hyper_step's bf16 stores of H' (forward) and dH
# (backward) rounded stochastically (scripts/device/stochastic_rounding.patch applied to the call's working tree, `git
# apply`, at commit 0903b91; GPTABLATE_STREAM_SR=1: the low 16 bits rounded up with the probability of their
# fraction, the random bits a hash of the element's index and kept bits). hyper with
# bf16 streams trained 300 steps at seeds 1 and 2 as GM and GN (round to nearest: 2.8615 and 2.8399; fp32 streams
# 2.8398 and 2.8095); then the step.
source "$(dirname "$0")/common.sh" gq
export GPTABLATE_STREAM_SR=1
src=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$src" --glob '*.py' --name pysrc > "$OUT/gq_prep.txt" 2>&1
tail -1 "$OUT/gq_prep.txt"; echo "[t=$((SECONDS-T0))s]"
for seed in 1 2; do
  timeout -k 5 150 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set arch.hyper.stream_dtype=bfloat16 --set train.seed=$seed --set train.max_iters=300 \
    --set train.warmup_iters=30 --set data.eval_interval=300 --set data.eval_tokens=1048576 \
    --set run.name=hyper_300_sr_$seed > "$OUT/gq_sr_$seed.txt" 2>&1
  echo "hyper bf16 stochastic seed $seed rc=$?"; grep -E "^step (100|200|290|300)/" "$OUT/gq_sr_$seed.txt" | cut -c1-120
  grep -E "^finished" "$OUT/gq_sr_$seed.txt" | cut -c1-110; echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --json "$OUT/gq_bench.json" > "$OUT/gq_bench.txt" 2>&1
echo "bench rc=$?"; tail -3 "$OUT/gq_bench.txt" | cut -c1-240; echo "[t=$((SECONDS-T0))s]"
