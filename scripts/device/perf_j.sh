#!/usr/bin/env bash
# Device call J (4 H200s): DDP scaling at a fixed per-GPU batch with the heap frozen after compiling
# (gc_ms and the slowest window in every row), with and without the recipe's accumulation (345M: a
# per-GPU batch of 60 as 30 x 2, the all-reduce once per 2 micro-steps), 30 timed steps a row.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
b() {  # timeout name args...
  if [ $((SECONDS-T0)) -gt 500 ]; then echo "skipped $2 (time)"; return; fi
  timeout "$1" python3 -m gptablate_cli bench "${@:3}" --json /tmp/j_$2.json 2>&1 | tee -a $OUT/j_all.txt | grep -v "^\s*$" | tail -1 | sed "s/^/$2: /"
  echo "  [t=$((SECONDS-T0))s]"
}
b 110 345_1_acc gpt2_345m --gpus 1 --steps 30 --set train.batch_size=60 --set train.micro_batch=30
b 110 345_4_acc gpt2_345m --gpus 4 --steps 30 --set train.batch_size=240 --set train.micro_batch=30
b 90 345_1 gpt2_345m --gpus 1 --steps 30 --set train.batch_size=30 --set train.micro_batch=30
b 90 345_4 gpt2_345m --gpus 4 --steps 30 --set train.batch_size=120 --set train.micro_batch=30
b 80 124_1 gpt2_124m --gpus 1 --steps 30 --set train.batch_size=60 --set train.micro_batch=60
b 80 124_4 gpt2_124m --gpus 4 --steps 30 --set train.batch_size=240 --set train.micro_batch=60
b 90 345_2_acc gpt2_345m --gpus 2 --steps 30 --set train.batch_size=120 --set train.micro_batch=30
b 80 124_2 gpt2_124m --gpus 2 --steps 30 --set train.batch_size=120 --set train.micro_batch=60
python3 - <<'PY'
import glob, json, os
rows = {os.path.basename(p)[2:-5]: json.load(open(p)) for p in sorted(glob.glob("/tmp/j_*.json"))}
json.dump(rows, open(os.environ["OUT"] + "/j_rows.json", "w"), indent=1)
PY
