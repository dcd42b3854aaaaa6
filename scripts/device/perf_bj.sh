#!/usr/bin/env bash
# Device call BJ (4 H200s, BI's machine where it was still held): 1.5B on 4 GPUs with one whole graph (the all-reduce of
# its 6.2 GB of fp32 gradients after the backward) against the graph split at the 25 MB buckets (BF: 173.2K tokens/s).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1; nvidia-smi --query-gpu=name --format=csv,noheader | wc -l
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bj_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 590 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bj_$2.json > $OUT/bj_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bj_$2.txt | grep -A1 "^recipe" | tail -1 | cut -c1-200; echo "  [t=$((SECONDS-T0))s]"
}
b 270 w gpt2_1.5b --gpus 4 --steps 8 --set train.ddp_graph=whole
b 270 s gpt2_1.5b --gpus 4 --steps 8
