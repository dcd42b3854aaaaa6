#!/usr/bin/env bash
# Device call FI (one H100): hyper (dynamic) trained 100 steps on real tokens with hyper_step's kernels (constant masks,
# the weight gradient's own kernel; arch.hyper.kernel=fused) and with the per-site code (kernel=torch), same seed and
# data: the kernels' numerics in training, not only in the checks (CG did this for hyper static).
source "$(dirname "$0")/common.sh" fi
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/fi_prep.txt 2>&1; tail -1 $OUT/fi_prep.txt
echo "[t=$((SECONDS-T0))s]"
for k in fused torch; do
  timeout -k 5 240 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set train.max_iters=100 --set data.eval_interval=100 --set data.eval_tokens=1048576 \
    --set arch.hyper.kernel=$k --set run.name=hyper_$k > $OUT/fi_$k.txt 2>&1
  echo "$k rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/fi_$k.txt | cut -c1-120; grep -E "^finished" $OUT/fi_$k.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
