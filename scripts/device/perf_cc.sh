#!/usr/bin/env bash
# Device call CC (2 H200s): compiling by block under DDP, which train.compile_unit=auto does not take yet (tried on 2
# CPU ranks only): 2-GPU bench at a fixed per-GPU batch with the default (one whole graph by auto) and with
# train.compile_unit=block, alternated twice, against one GPU on the same machine (by block, the default there).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
L=/tmp/cc; mkdir -p $L
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
python3 -m pip install --no-deps --no-build-isolation -q -e . > $L/pip.txt 2>&1
T0=$SECONDS
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 20 --json $OUT/cc_one.json > $L/one.txt 2>&1
echo "== one GPU rc=$? [t=$((SECONDS-T0))s]"; grep -A1 "^recipe" $L/one.txt | tail -1 | cut -c1-175
i=0
for u in auto block auto block; do
  i=$((i+1))
  timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --gpus 2 --steps 20 --set train.batch_size=120 \
    --set train.compile_unit=$u --json $OUT/cc_two_$i.json > $L/two_$i.txt 2>&1
  echo "== two GPUs $i ($u) rc=$? [t=$((SECONDS-T0))s]"; grep -o "compile=True[^,]*" $L/two_$i.txt | head -1
  grep -A1 "^recipe" $L/two_$i.txt | tail -1 | cut -c1-175
  python3 -c 'import json; a=json.load(open("'$OUT'/cc_one.json"))[0]; b=json.load(open("'$OUT'/cc_two_'$i'.json"))[0]; print("  efficiency %.1f%%, first window %.1f s" % (100*b["tokens_per_s"]/(2*a["tokens_per_s"]), b["first_window_s"]))'
done
cp $L/two_2.txt $OUT/cc_two_2.txt
