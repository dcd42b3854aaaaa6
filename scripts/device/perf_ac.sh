#!/usr/bin/env bash
# Device call AC (one H100): CUDA graphs in the engine (train.cuda_graphs, auto: on with one process and one
# micro-step): their GPU test (training with and without them), the 124M step against the reference with them,
# without them, and with them again. No gain beyond the spread (docs/performance.md): the key and its test were
# removed after this call, so this script no longer runs as it did.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ac_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 200 python3 -m pytest -q tests/test_cuda_graphs.py > $OUT/ac_test.txt 2>&1
tail -3 $OUT/ac_test.txt; echo "[t=$((SECONDS-T0))s]"
n=0
for sets in "--reference" "--set train.cuda_graphs=false" "--reference"; do
  n=$((n+1))
  timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 $sets --json $OUT/ac_bench$n.json \
    > $OUT/ac_bench$n.txt 2>&1
  echo "$sets"; tail -3 $OUT/ac_bench$n.txt; echo "[t=$((SECONDS-T0))s]"
done
