#!/usr/bin/env bash
# Device call AP (one H100): the MLP's matmuls with the GELU in their epilogues (model/mlp.py), checked against the
# torch rule at the three widths, then timed against cuBLAS with bias_gelu's kernels, by tile.
set -uo pipefail
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ap_pip.txt 2>&1
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
T0=$SECONDS
timeout -k 5 150 python3 scripts/device/mlp_bench.py check > $OUT/ap_check.txt 2>&1; echo "check rc=$?"
tail -7 $OUT/ap_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 scripts/device/mlp_bench.py > $OUT/ap_bench.txt 2>&1; echo "bench rc=$?"
cat $OUT/ap_bench.txt | tail -40; echo "[t=$((SECONDS-T0))s]"
