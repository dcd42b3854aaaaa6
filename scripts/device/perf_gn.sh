#!/usr/bin/env bash
# Device call GN (one H100, GM's machine): GM's 300-step runs at seed 2, hyper with fp32 and with bf16 streams, and the
# baseline (vanilla residual) at seed 1, for the seeds' spread against GM's gap (val 2.8398 fp32, 2.8615 bf16 at seed 1).
source "$(dirname "$0")/common.sh" gn
if [ ! -d "$GPTABLATE_DATA/pysrc" ]; then
  src=$(python3 -c 'import sys; print(sys.prefix)')/lib
  python3 -m gptablate_cli prepare text "$src" --glob '*.py' --name pysrc > "$OUT/gn_prep.txt" 2>&1
  tail -1 "$OUT/gn_prep.txt"; echo "[t=$((SECONDS-T0))s]"
fi
for run in "hyper float32 2" "hyper bfloat16 2" "vanilla float32 1"; do
  set -- $run
  timeout -k 5 150 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=$1 \
    $([ "$1" = hyper ] && echo "--set arch.hyper.stream_dtype=$2") --set train.seed=$3 --set train.max_iters=300 \
    --set train.warmup_iters=30 --set data.eval_interval=300 --set data.eval_tokens=1048576 \
    --set run.name=${1}_300_${2}_$3 > "$OUT/gn_$1_$2_$3.txt" 2>&1
  echo "$1 $2 seed $3 rc=$?"; grep -E "^step (100|200|290|300)/" "$OUT/gn_$1_$2_$3.txt" | cut -c1-120
  grep -E "^finished" "$OUT/gn_$1_$2_$3.txt" | cut -c1-110; echo "[t=$((SECONDS-T0))s]"
done
