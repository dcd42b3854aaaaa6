#!/usr/bin/env bash
# Device call BR (one H100): why the step compiled by block ran 1.1 ms slower than the one graph in call BQ: the
# 12-layer step at the recipe's 60 sequences profiled both ways (wall against GPU busy time, time by kind of kernel,
# the longest idle gaps; every kernel to a CSV each).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/br_pip.txt 2>&1
T0=$SECONDS
for u in model block model block; do
  timeout -k 5 200 python3 scripts/profile_step.py --layers 12 --micro 60 --top 40 --gaps 12 --unit $u \
    --csv $OUT/br_kernels_$u.csv "" > $OUT/br_profile_$u.txt 2>&1
  echo "== $u rc=$? [t=$((SECONDS-T0))s]"; grep -A12 "^====" $OUT/br_profile_$u.txt | cut -c1-150
  sed -n "/  idle:/,\$p" $OUT/br_profile_$u.txt | head -14 | cut -c1-200
done
