#!/usr/bin/env bash
# Device call CH (one H100): the hyper tests on a GPU, among them the static model on the kernels against the per-site
# code (loss and every gradient, fp32); then CG's 100 training steps again, fused and per-site, and the per-site code
# once more with the MLP's and c_attn's fused operations off (train.norm_kernel=torch): the same function rounded
# otherwise, to see how far validation moves with rounding alone (CG: fused 3.4688 against per-site 3.4494).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ch_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py 2>&1 | tail -8; echo "[t=$((SECONDS-T0))s]"
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/ch_prep.txt 2>&1; tail -1 $OUT/ch_prep.txt
for k in fused torch torch,plainops; do
  extra=""; [ "$k" = torch,plainops ] && extra="--set train.norm_kernel=torch"
  timeout -k 5 150 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set arch.hyper.dynamic=false --set train.max_iters=100 --set data.eval_interval=100 \
    --set data.eval_tokens=1048576 --set arch.hyper.kernel=${k%%,*} $extra --set run.name=static_${k/,/_} \
    > $OUT/ch_$k.txt 2>&1
  echo "$k rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/ch_$k.txt | cut -c1-120; grep -E "^finished" $OUT/ch_$k.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
