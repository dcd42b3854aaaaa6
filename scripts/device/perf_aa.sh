#!/usr/bin/env bash
# Device call AA (one H100, a fresh machine): the committed shapes from call Z; the fused operations' GPU test;
# the 124M step against the reference, twice.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/aa_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 -m pytest -q -k "gpu" tests/test_addnorm.py > $OUT/aa_test.txt 2>&1; tail -1 $OUT/aa_test.txt
for i in 1 2; do
  timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/aa_bench$i.json \
    > $OUT/aa_bench$i.txt 2>&1
  tail -2 $OUT/aa_bench$i.txt; echo "[t=$((SECONDS-T0))s]"
done
