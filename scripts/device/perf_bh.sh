#!/usr/bin/env bash
# Device call BH (4 H200s, the session's last device minutes): `train.ddp_graph` whole against split on one
# machine, for 345M (30 x 2 a GPU) and again for 124M (60 a GPU): in call BG, 124M on 4 GPUs ran at 2,070.9K tokens/s
# with one whole graph against 2,044.9K split at 25 MB buckets and 2,064.3K at 100 MB (one run each).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bh_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 390 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bh_$2.json > $OUT/bh_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bh_$2.txt | grep -A1 "^recipe" | tail -1 | cut -c1-200; echo "  [t=$((SECONDS-T0))s]"
}
b 120 345w gpt2_345m --gpus 4 --steps 15 --set train.batch_size=240 --set train.micro_batch=30 --set train.ddp_graph=whole
b 120 345s gpt2_345m --gpus 4 --steps 15 --set train.batch_size=240 --set train.micro_batch=30
b 80 124w gpt2_124m --gpus 4 --steps 15 --set train.batch_size=240 --set train.ddp_graph=whole
b 80 124s gpt2_124m --gpus 4 --steps 15 --set train.batch_size=240
