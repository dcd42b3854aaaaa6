#!/usr/bin/env bash
# Device call BC (one H100): the committed code (triton_ops, the walk without the stream copy, the walk compiled with
# the coalescing tiling analysis off): the compiled-model check, target 1 twice, the 15-sequence step.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bc_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 150 python3 tests/compiled_kernels_check.py > $OUT/bc_check.txt 2>&1; echo "check rc=$?"; tail -1 $OUT/bc_check.txt
b() {  # limit name args...
  if [ $((SECONDS - T0 + $1)) -gt 400 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bc_$2.json > $OUT/bc_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bc_$2.txt | grep -A2 "^recipe" | cut -c1-230; echo "  [t=$((SECONDS-T0))s]"
}
b 130 ref1 gpt2_124m --steps 30 --reference
b 100 f15 gpt2_124m --steps 30 --set train.batch_size=15 --set train.micro_batch=15
b 130 ref2 gpt2_124m --steps 30 --reference
