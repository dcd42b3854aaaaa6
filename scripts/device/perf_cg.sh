#!/usr/bin/env bash
# Device call CG (one H100): hyper static trained 100 steps on real tokens with its flat-grid operation
# (model/hyperstatic.py, arch.hyper.kernel=fused) and with the per-site code (kernel=torch), same seed and data;
# then the static row of the bench again, on another machine than CF's.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cg_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/cg_prep.txt 2>&1; tail -1 $OUT/cg_prep.txt
for k in fused torch; do
  timeout -k 5 170 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set arch.hyper.dynamic=false --set train.max_iters=100 --set data.eval_interval=100 \
    --set data.eval_tokens=1048576 --set arch.hyper.kernel=$k --set run.name=static_$k > $OUT/cg_$k.txt 2>&1
  echo "$k rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/cg_$k.txt | cut -c1-120; grep -E "^finished" $OUT/cg_$k.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 $((570 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper-static --json $OUT/cg_static.json > $OUT/cg_static.txt 2>&1
echo "bench rc=$?"; tail -3 $OUT/cg_static.txt | cut -c1-250; echo "[t=$((SECONDS-T0))s]"
