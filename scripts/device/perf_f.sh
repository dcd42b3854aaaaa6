#!/usr/bin/env bash
# Device call F (4 H200s): DDP scaling at a fixed per-GPU batch on 1, 2 and 4 GPUs of one machine,
# 30 timed steps each (call E's 8-10 steps let one slow window move a figure by 10%).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
b() { timeout "$1" python3 -m gptablate_cli bench "${@:2}" 2>&1 | tee -a $OUT/f_all.txt | grep -v "^\s*$" | tail -1; echo "  [t=$((SECONDS-T0))s]"; }
echo "== 345M, 30 per GPU: 1 2 4"
for n in 1 2 4; do b 100 gpt2_345m --gpus $n --steps 30 --set train.batch_size=$((30*n)) --set train.micro_batch=30 --json $OUT/f_345_$n.json; done
echo "== 124M, 60 per GPU: 1 2 4"
for n in 1 2 4; do b 80 gpt2_124m --gpus $n --steps 30 --set train.batch_size=$((60*n)) --set train.micro_batch=60 --json $OUT/f_124_$n.json; done
