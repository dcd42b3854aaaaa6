#!/usr/bin/env bash
# Device call AW (one H100): why the 124M recipe's own global batch on 4 GPUs (15 sequences a GPU) ran at 51% scaling
# in call AV (75.7% in call E, before the fused operations): the host's time a call of each fused operation
# (launch_overhead.py), the 15-sequence step on one GPU with the fused operations and without, and its profile
# (GPU busy against wall time, the idle gaps).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/aw_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 60 python3 scripts/device/launch_overhead.py > $OUT/aw_launch.txt 2>&1; echo "launch rc=$?"; cat $OUT/aw_launch.txt | tail -12
b() {  # limit name args...
  if [ $((SECONDS - T0 + $1)) -gt 575 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/aw_$2.json > $OUT/aw_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/aw_$2.txt | tail -3; echo "  [t=$((SECONDS-T0))s]"
}
b 120 f15 gpt2_124m --steps 30 --set train.batch_size=15 --set train.micro_batch=15
b 120 t15 gpt2_124m --steps 30 --set train.batch_size=15 --set train.micro_batch=15 --set train.norm_kernel=torch
timeout -k 5 150 python3 scripts/profile_step.py --layers 12 --micro 15 --gaps 8 "" > $OUT/aw_prof.txt 2>&1
echo "prof rc=$?"; grep -v "^\s*$" $OUT/aw_prof.txt | head -40; echo "  [t=$((SECONDS-T0))s]"
