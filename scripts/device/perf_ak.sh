#!/usr/bin/env bash
# Device call AK (one H100): the GPU kernel checks after kernels.takes and kernels.row_chunks replaced the per-module
# copies of those rules (aggregate, hyperstep, qkvproj, addnorm and bias_gelu).
set -uo pipefail
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ak_pip.txt 2>&1
for c in aggregate hyperstep qkvproj addnorm; do
  timeout -k 5 140 python3 tests/${c}_kernel_check.py > $OUT/ak_$c.txt 2>&1; echo "$c rc=$?"; tail -1 $OUT/ak_$c.txt
done
