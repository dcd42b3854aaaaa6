#!/usr/bin/env bash
# Device call CK (one H100): the fold at CJ's shapes (FWD_NORM, ROW_SUMS, BWD_NORM): the kernel check and the hyper tests
# on a GPU; 100 training steps of hyper static on real tokens with the fold (arch.hyper.kernel=fused, fused_kernels on)
# and per-site (torch), as calls CG and CH ran them before the fold; bench hyper static against the baseline again.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ck_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/hyperstatic_kernel_check.py 2>&1 | tail -3
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py 2>&1 | tail -2; echo "[t=$((SECONDS-T0))s]"
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/ck_prep.txt 2>&1; tail -1 $OUT/ck_prep.txt
for k in fused torch; do
  timeout -k 5 150 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set arch.hyper.dynamic=false --set train.max_iters=100 --set data.eval_interval=100 \
    --set data.eval_tokens=1048576 --set arch.hyper.kernel=$k --set run.name=static_$k > $OUT/ck_$k.txt 2>&1
  echo "$k rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/ck_$k.txt | cut -c1-120; grep -E "^finished" $OUT/ck_$k.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 $((585 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper-static --json $OUT/ck_bench.json > $OUT/ck_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/ck_bench.txt; echo "[t=$((SECONDS-T0))s]"
