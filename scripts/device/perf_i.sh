#!/usr/bin/env bash
# Device call I (one H100): the loss kernel's shapes timed on the 124M step's logits (the fastest is
# written into loss.py for this call), its GPU test, then the 124M step against the reference.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
timeout 150 python3 scripts/device/loss_kernel_bench.py --write-best 2>&1 | tee $OUT/i_kernel.txt | grep -v Warn
grep -n "^BLOCK\|^WARPS\|^PROGRAMS" gptablate/model/loss.py
echo "[t=$((SECONDS-T0))s]"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_loss.py -k triton 2>&1 | tail -2
echo "[t=$((SECONDS-T0))s]"
timeout 240 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/i_bench.json 2>&1 | tee $OUT/i_bench.txt | tail -3
echo "[t=$((SECONDS-T0))s]"
timeout 100 python3 -m gptablate_cli bench gpt2_124m --steps 30 --set train.loss_kernel=torch --json $OUT/i_plain.json 2>&1 | tail -2
echo "[t=$((SECONDS-T0))s]"
