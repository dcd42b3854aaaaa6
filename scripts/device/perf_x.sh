#!/usr/bin/env bash
# Device call X (one H100): add_norm and bias_gelu with the row width a compile-time constant: GPU test, sweep
# (written into the modules), the 124M step against the reference; then the variants at risk of the 1.10x and
# 1.25x limits against the faster baseline (4 layers, micro-batch 16, as the earlier table).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/x_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 -m pytest -q -k "gpu" tests/test_addnorm.py > $OUT/x_test.txt 2>&1; tail -1 $OUT/x_test.txt
timeout -k 5 120 python3 scripts/device/addnorm_bench.py --write-best > $OUT/x_an.txt 2>&1
grep -E "fastest|add_norm:|bias_gelu:|inductor:|written|Error" $OUT/x_an.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/x_bench.json \
  > $OUT/x_bench.txt 2>&1
tail -3 $OUT/x_bench.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 270 python3 -m gptablate_cli bench gpt2_124m --all-variants --steps 10 --set model.n_layer=4 \
  --set train.batch_size=16 --set train.micro_batch=16 --variant residual=attnres --variant residual=attnres-full \
  --variant residual=laurel --variant residual=laurel-lr --variant residual=denseformer --variant norm=dyt \
  --variant block=sandwich --variant qk_norm --variant norm=rmsnorm --json $OUT/x_var.json > $OUT/x_var.txt 2>&1
tail -12 $OUT/x_var.txt; echo "[t=$((SECONDS-T0))s]"
