#!/usr/bin/env bash
# Device call CW (one H100): the committed hyper_step (coefficients loaded as the streams' columns, the backward's
# 2-byte rows narrowed, the forward's statistics in two passes as before) against the code before this session
# (.dev/ab/head.py) and against the same with the forward's statistics in one pass (.dev/ab/onesum.py); the committed
# copy's fastest stages and register caps written into TUNING; the kernel check, the step twice, the GPU tests.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cw_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 scripts/device/hyperstep_ab.py head=.dev/ab/head.py committed=gptablate/model/hyperstep.py \
    onesum=.dev/ab/onesum.py --write-best committed 2>&1 | grep -vi warn | cut -c1-240
cp gptablate/model/hyperstep.py $OUT/cw_hyperstep.py
echo "[t=$((SECONDS-T0))s]"
for i in 1 2; do
  timeout -k 5 150 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper 2>&1 | tail -2 | cut -c1-200
done
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/cw_tests.txt 2>&1
tail -1 $OUT/cw_tests.txt; grep -E "^E  " $OUT/cw_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
