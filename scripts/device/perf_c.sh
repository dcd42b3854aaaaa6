#!/usr/bin/env bash
# Device call C (4 H200): 1.5B on 4 GPUs, DDP scaling of 124M and 345M at a fixed per-GPU batch, recipe batch.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
b() { timeout 220 python3 -m gptablate_cli bench "$@" 2>&1 | tee -a $OUT/c_all.txt | tail -1; echo "  [t=$((SECONDS-T0))s]"; }
T0=$SECONDS
echo "== 1.5B, recipe, 4 GPUs"; b gpt2_1.5b --gpus 4 --steps 8 --json $OUT/c_15b.json
echo "== 124M, 60 per GPU, no accumulation: 1 2 4"
for n in 1 2 4; do b gpt2_124m --gpus $n --steps 15 --set train.batch_size=$((60*n)) --set train.micro_batch=60; done
echo "== 345M, 30 per GPU, no accumulation: 1 2 4"
for n in 1 2 4; do b gpt2_345m --gpus $n --steps 10 --set train.batch_size=$((30*n)) --set train.micro_batch=30; done
echo "== 124M, the recipe's global batch 60: 2 4"
for n in 2 4; do b gpt2_124m --gpus $n --steps 15; done
