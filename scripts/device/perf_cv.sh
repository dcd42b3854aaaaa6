#!/usr/bin/env bash
# Device call CV (one H100): hyper_step with the coefficients each step needs loaded as the streams' columns (no
# reductions across lanes to pick them out of a loaded tile), against the code before this session (.dev/ab/head.py)
# and against the same with the forward's 2-byte rows left wide (.dev/ab/cols_fwdwide.py); the committed copy's fastest
# stages and register caps written into TUNING; the kernel check, the GPU tests, the step.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cv_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 260 python3 scripts/device/hyperstep_ab.py head=.dev/ab/head.py cols=gptablate/model/hyperstep.py \
    cols_fwdwide=.dev/ab/cols_fwdwide.py --write-best cols 2>&1 | grep -vi warn | cut -c1-240
cp gptablate/model/hyperstep.py $OUT/cv_hyperstep.py
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 240 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper 2>&1 | tail -3 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/cv_tests.txt 2>&1
tail -1 $OUT/cv_tests.txt; grep -E "^E  " $OUT/cv_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
