#!/usr/bin/env bash
# Device call N (one H100): the new kernels' GPU tests (Sinkhorn, the hyper norm-projection, hyper_step,
# the loss); hyper_step's kernels by grid and warps; the multi-stream variants at the real size (12 layers,
# the recipe's 60-sequence step); the loss kernel against the plain loss in two short training runs from the
# same seed and data (validation loss). Output to files, not pipes (compile workers keep a pipe open).
# (As run in call N; tests/test_normproj.py has since been removed with model/normproj.py.)
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/n_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 100 python3 -m pytest -q -k "gpu" tests/test_hyperstep.py tests/test_normproj.py tests/test_sinkhorn.py > $OUT/n_test.txt 2>&1
grep -E "passed|failed|FAILED|Error" $OUT/n_test.txt | head -8
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 80 python3 scripts/device/hyperstep_bench.py > $OUT/n_hsbench.txt 2>&1; cat $OUT/n_hsbench.txt | tail -14
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 250 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
  --variant residual=hyper-static --variant residual=mhc --json $OUT/n_var.json > $OUT/n_var.txt 2>&1
grep -E "^run bench|^finished" $OUT/n_var.txt | cut -c1-150; tail -7 $OUT/n_var.txt
echo "[t=$((SECONDS-T0))s]"
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
timeout -k 5 40 python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/n_prep.txt 2>&1; tail -1 $OUT/n_prep.txt
for k in fused torch; do
  timeout -k 5 95 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set train.max_iters=100 \
    --set data.eval_interval=100 --set data.eval_tokens=1048576 --set train.loss_kernel=$k > $OUT/n_ab_$k.txt 2>&1
  echo "$k: $(grep -E 'step 100/|finished' $OUT/n_ab_$k.txt | cut -c1-160 | tr '\n' ' ')"
done
echo "[t=$((SECONDS-T0))s]"
