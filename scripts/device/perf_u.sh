#!/usr/bin/env bash
# Device call U (one H100): add_norm and bias_gelu (the MLP's bias and GELU with the bias's gradient in the
# GELU's backward) in the fused Pre-LN walk: their GPU tests, their shapes swept (written into the modules),
# the 124M step against the reference and against the plain layers, every kernel of the step.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/u_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 180 python3 -m pytest -q -k "gpu" tests/test_addnorm.py tests/test_loss.py > $OUT/u_test.txt 2>&1
tail -1 $OUT/u_test.txt
timeout -k 5 150 python3 scripts/device/addnorm_bench.py --write-best > $OUT/u_an.txt 2>&1
grep -E "fastest|add_norm:|bias_gelu:|inductor:|written|Error" $OUT/u_an.txt; echo "[t=$((SECONDS-T0))s]"
git diff --stat gptablate/model
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/u_bench.json \
  > $OUT/u_bench.txt 2>&1
tail -3 $OUT/u_bench.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --set train.norm_kernel=torch \
  --json $OUT/u_plain.json > $OUT/u_plain.txt 2>&1
tail -2 $OUT/u_plain.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/profile_step.py --layers 12 --micro 60 --csv $OUT/u_kernels.csv "" > $OUT/u_prof.txt 2>&1
grep -A10 "^====" $OUT/u_prof.txt | head -11; echo "[t=$((SECONDS-T0))s]"
