#!/usr/bin/env bash
# Device call CA (2 H200s): logging without a drain under DDP (torchrun, NCCL): target 3's 2-GPU efficiency at a fixed
# per-GPU batch with the session's code (compile_unit auto: one graph under DDP, by block on one GPU); and how much of
# the start-up's imports is this machine's PYTHONDONTWRITEBYTECODE=1 (no .pyc is ever written, so every process
# compiles torch's and sympy's sources again).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
L=/tmp/ca; mkdir -p $L
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $L/pip.txt 2>&1
T0=$SECONDS
for i in 1 2; do
  TIMEFORMAT="imports as the machine is set ($i): %R s"; time python3 -c "import torch; import gptablate.train.engine"
done
for i in 1 2 3; do
  TIMEFORMAT="imports writing and reading .pyc ($i): %R s"
  time env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=/tmp/pyc python3 -c "import torch; import gptablate.train.engine"
done
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 20 --json $OUT/ca_one.json > $L/one.txt 2>&1
echo "== one GPU rc=$? [t=$((SECONDS-T0))s]"; grep -A1 "^recipe" $L/one.txt | tail -1 | cut -c1-175
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --gpus 2 --steps 20 --set train.batch_size=120 \
  --json $OUT/ca_two.json > $L/two.txt 2>&1
echo "== two GPUs rc=$? [t=$((SECONDS-T0))s]"; grep -E "DDP graph|^recipe" -A1 $L/two.txt | cut -c1-175 | tail -4
python3 -c 'import json; a=json.load(open("'$OUT'/ca_one.json"))[0]; b=json.load(open("'$OUT'/ca_two.json"))[0]; print("efficiency %.1f%% (%.1fK against 2 x %.1fK)" % (100*b["tokens_per_s"]/(2*a["tokens_per_s"]), b["tokens_per_s"]/1e3, a["tokens_per_s"]/1e3))'
cp $L/two.txt $OUT/ca_two.txt
