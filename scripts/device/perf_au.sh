#!/usr/bin/env bash
# Device call AU (one H100): LAuReL-LR trained 100 steps on real tokens with the fused walk (add_norm with its
# low-rank term and stream copy) and with train.norm_kernel=torch (the blocks' own path), same seed and data.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/au_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/au_prep.txt 2>&1; tail -1 $OUT/au_prep.txt
for k in fused torch; do
  timeout -k 5 200 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=laurel \
    --set arch.laurel.mode=lr --set train.max_iters=100 --set data.eval_interval=100 --set data.eval_tokens=1048576 \
    --set train.norm_kernel=$k > $OUT/au_$k.txt 2>&1; echo "$k rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/au_$k.txt | cut -c1-120; grep -E "^finished" $OUT/au_$k.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
