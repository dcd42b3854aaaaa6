#!/usr/bin/env bash
# Device call AV (4 H200s): targets 3 and 4 on 4 GPUs with the current code (calls C and J, the last 4-GPU rows,
# came before the fused operations, the reshaped loss kernel and the q/k/v join): 124M at 60 sequences a GPU on 1,
# 2 and 4 GPUs, 345M at 30 x 2 a GPU on 1 and 4 (its 2-GPU row is call AR's), 1.5B on 4 GPUs, and the 124M recipe's
# own global batch on 4 if the call's time allows.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1; nvidia-smi --query-gpu=name --format=csv,noheader | wc -l
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/av_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 575 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/av_$2.json > $OUT/av_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/av_$2.txt | tail -6; echo "  [t=$((SECONDS-T0))s]"
}
b 200 124 gpt2_124m --scaling 1,2,4 --steps 30
b 170 1p5b gpt2_1.5b --gpus 4 --steps 8
b 190 345 gpt2_345m --scaling 1,4 --steps 30 --set train.micro_batch=30
b 80 124g gpt2_124m --gpus 4 --steps 30
