#!/usr/bin/env bash
# Device call CO (one H100): hyper_step's weight-gradient matmul with its 6 columns padded to 8 (call CN's profile showed
# a SIMT sgemm, 0.40 ms a site): bench hyper against the baseline; the profile's matmul kernels of hyper's step.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/co_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 250 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
  --json $OUT/co_bench.json > $OUT/co_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/co_bench.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 12 \
  --csv $OUT/co_kernels.csv "arch.residual=hyper" > $OUT/co_profile.txt 2>&1; echo "profile rc=$?"
grep -E "====" $OUT/co_profile.txt | cut -c1-200
awk -F, '$2==24 || $2==48' $OUT/co_kernels.csv | sort -t, -k3 -gr | head -6 | cut -c1-160; echo "[t=$((SECONDS-T0))s]"
