#!/usr/bin/env bash
# Device call BD (4 H200s, a short call at the end of the session's device time): the 124M recipe's own global batch
# (60 = 15 a GPU) on 4 GPUs with the operations as triton_ops (call AV: 1,095.3K tokens/s, 51% of 4 x one GPU's
# 60-sequence step; call E, before the fused operations: 75.7%), then one GPU's 60-sequence step for the ratio.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bd_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...
  if [ $((SECONDS - T0 + $1)) -gt 200 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bd_$2.json > $OUT/bd_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bd_$2.txt | grep -A1 "^recipe" | cut -c1-200; echo "  [t=$((SECONDS-T0))s]"
}
b 100 g4 gpt2_124m --gpus 4 --steps 30
b 90 g1 gpt2_124m --steps 20
