#!/usr/bin/env bash
# Device call CS (one H100): hyper (dynamic) trained 100 steps on real tokens with the final code (the fold, the weight
# gradient outside autocast, the pipelined backward): fused twice (how much identical runs differ) and per-site once,
# as call CM ran them (its validation gap, 3.4669 against 3.4371, was larger than earlier repeats had differed by).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cs_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/cs_prep.txt 2>&1; tail -1 $OUT/cs_prep.txt
for run in fused_a fused_b torch; do
  k=${run%_*}
  timeout -k 5 170 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set train.max_iters=100 --set data.eval_interval=100 --set data.eval_tokens=1048576 \
    --set arch.hyper.kernel=$k --set run.name=dyn_$run > $OUT/cs_$run.txt 2>&1
  echo "$run rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/cs_$run.txt | cut -c1-120; grep -E "^finished" $OUT/cs_$run.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
