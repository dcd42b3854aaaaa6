#!/usr/bin/env bash
# Device call BG (4 H200s): call BF measured 124M at 94.4% on 4 GPUs (60 sequences a GPU; 111.87 ms a step on one
# GPU, 118.48 ms on four): the one-GPU step got faster and the all-reduce did not. What DDP costs: dynamo's
# DDPOptimizer (the compiled graph cut at the 25 MB buckets) against one whole graph with the all-reduce after the
# backward (`train.ddp_graph=whole`), and 100 MB buckets; then 345M on 1 and 4 GPUs (BF's row ran out of time).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1; nvidia-smi --query-gpu=name --format=csv,noheader | wc -l
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bg_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 585 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bg_$2.json > $OUT/bg_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bg_$2.txt | grep -A3 "^recipe" | cut -c1-220; echo "  [t=$((SECONDS-T0))s]"
}
b 90 g1 gpt2_124m --steps 20
b 100 split gpt2_124m --gpus 4 --steps 20 --set train.batch_size=240
b 100 whole gpt2_124m --gpus 4 --steps 20 --set train.batch_size=240 --set train.ddp_graph=whole
b 240 345 gpt2_345m --scaling 1,4 --steps 20 --set train.micro_batch=30
b 100 b100 gpt2_124m --gpus 4 --steps 20 --set train.batch_size=240 --set train.ddp_bucket_mb=100
