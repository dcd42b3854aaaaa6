#!/usr/bin/env bash
# Device call BN (2 H200s): train.ddp_graph's auto takes the whole graph for 124M on 2 GPUs too, which was measured
# only split there (BF: 95.7%): whole and split alternated on one machine, and one GPU's step for the efficiency.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1; nvidia-smi --query-gpu=name --format=csv,noheader | wc -l
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bn_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 500 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bn_$2.json > $OUT/bn_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bn_$2.txt | grep -A1 "^recipe" | tail -1 | cut -c1-200; echo "  [t=$((SECONDS-T0))s]"
}
b 90 g1 gpt2_124m --steps 20
b 100 w1 gpt2_124m --gpus 2 --steps 20 --set train.batch_size=120
b 100 s1 gpt2_124m --gpus 2 --steps 20 --set train.batch_size=120 --set train.ddp_graph=split
b 100 w2 gpt2_124m --gpus 2 --steps 20 --set train.batch_size=120
grep -o "DDP graph: [a-z ]*" $OUT/bn_w1.txt $OUT/bn_s1.txt | sort | uniq -c
