#!/usr/bin/env bash
# Device call AS (one H100): LAuReL-LR in the fused Pre-LN walk (its low-rank term added in add_norm's pass): the
# add_norm kernels' GPU check (with the second term), then laurel lr against the baseline at the real size.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/as_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/addnorm_kernel_check.py > $OUT/as_check.txt 2>&1; echo "check rc=$?"
tail -2 $OUT/as_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 30 --all-variants --variant residual=laurel-lr \
  --json $OUT/as_laurel.json > $OUT/as_laurel.txt 2>&1; echo "bench rc=$?"
tail -4 $OUT/as_laurel.txt; echo "[t=$((SECONDS-T0))s]"
