#!/usr/bin/env bash
# Device call AB (one H100): the q/k/v gradient join (model/qkvproj.py): its GPU test, its shape sweep (written into
# the module), the 124M step against the reference twice, and the step's kernels.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ab_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 150 python3 -m pytest -q -k "gpu" tests/test_qkvproj.py tests/test_addnorm.py > $OUT/ab_test.txt 2>&1
tail -3 $OUT/ab_test.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 120 python3 scripts/device/qkvjoin_bench.py --write-best > $OUT/ab_join.txt 2>&1
grep -E "fastest|inductor|written|Error" $OUT/ab_join.txt; echo "[t=$((SECONDS-T0))s]"
grep -n "^JOIN" gptablate/model/qkvproj.py
for i in 1 2; do
  timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/ab_bench$i.json \
    > $OUT/ab_bench$i.txt 2>&1
  tail -2 $OUT/ab_bench$i.txt; echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 150 python3 scripts/profile_step.py --layers 12 --micro 60 --csv $OUT/ab_kernels.csv "" \
  > $OUT/ab_prof.txt 2>&1
grep -E "^====|ms a step|add_norm|matmul|attention|inductor|loss|optim|memset|Error" $OUT/ab_prof.txt | head -20
echo "[t=$((SECONDS-T0))s]"
