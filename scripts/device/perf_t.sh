#!/usr/bin/env bash
# Device call T (one H100): Pre-LN's add and norm as one operation (model/addnorm.py): its kernels' GPU tests
# (and the loss kernels'), its shapes swept against inductor's code, the 124M step with it against the
# reference and against the plain layers, and every kernel of the step.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/t_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 180 python3 -m pytest -q -k "gpu" tests/test_addnorm.py tests/test_loss.py > $OUT/t_test.txt 2>&1
tail -1 $OUT/t_test.txt
timeout -k 5 120 python3 scripts/device/addnorm_bench.py --write-best > $OUT/t_an.txt 2>&1
grep -E "fastest|add_norm:|inductor:|written|Error" $OUT/t_an.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/t_bench.json \
  > $OUT/t_bench.txt 2>&1
tail -3 $OUT/t_bench.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --set train.norm_kernel=torch \
  --json $OUT/t_plain.json > $OUT/t_plain.txt 2>&1
tail -2 $OUT/t_plain.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/profile_step.py --layers 12 --micro 60 --csv $OUT/t_kernels.csv "" > $OUT/t_prof.txt 2>&1
head -11 $OUT/t_prof.txt; echo "[t=$((SECONDS-T0))s]"
