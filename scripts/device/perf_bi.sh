#!/usr/bin/env bash
# Device call BI (4 H200s): to decide train.ddp_graph's default, 124M on 4 GPUs with the graph whole and split,
# alternated twice on one machine (calls BG and BH gave one run a row: whole 96.4% against split 95.2%), and the
# one-GPU step on the same machine for the efficiency.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1; nvidia-smi --query-gpu=name --format=csv,noheader | wc -l
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bi_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 585 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bi_$2.json > $OUT/bi_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bi_$2.txt | grep -A1 "^recipe" | tail -1 | cut -c1-200; echo "  [t=$((SECONDS-T0))s]"
}
b 90 g1 gpt2_124m --steps 20
for i in 1 2; do
  b 100 w$i gpt2_124m --gpus 4 --steps 20 --set train.batch_size=240 --set train.ddp_graph=whole
  b 100 s$i gpt2_124m --gpus 4 --steps 20 --set train.batch_size=240
done
