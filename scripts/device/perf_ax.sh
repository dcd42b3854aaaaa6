#!/usr/bin/env bash
# Device call AX (one H100): add_norm, bias_gelu and the q/k/v join as triton_ops, so that inductor launches their
# kernels itself (call AW: as opaque custom ops each call cost the host 80-150 us, and the 15-sequence step ran 13%
# slower with them than without). Checks (the compiled model against eager, inductor's code; the kernels), the host
# time a call, the 15-sequence step with and without the operations, the 60-sequence step against the reference.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ax_pip.txt 2>&1
T0=$SECONDS
for c in compiled_kernels addnorm_kernel qkvproj_kernel; do
  timeout -k 5 200 python3 tests/${c}_check.py > $OUT/ax_$c.txt 2>&1; echo "$c rc=$?"; tail -2 $OUT/ax_$c.txt | cut -c1-400
done; echo "  [t=$((SECONDS-T0))s]"
timeout -k 5 90 python3 scripts/device/launch_overhead.py > $OUT/ax_launch.txt 2>&1; echo "launch rc=$?"; tail -12 $OUT/ax_launch.txt
b() {  # limit name args...
  if [ $((SECONDS - T0 + $1)) -gt 575 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/ax_$2.json > $OUT/ax_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/ax_$2.txt | tail -3; grep -c "assuming every input is mutated" $OUT/ax_$2.txt
  echo "  [t=$((SECONDS-T0))s]"
}
b 120 f15 gpt2_124m --steps 30 --set train.batch_size=15 --set train.micro_batch=15
b 120 t15 gpt2_124m --steps 30 --set train.batch_size=15 --set train.micro_batch=15 --set train.norm_kernel=torch
b 150 ref gpt2_124m --steps 30 --reference
if [ $((SECONDS - T0)) -lt 420 ]; then
  timeout -k 5 150 python3 scripts/profile_step.py --layers 12 --micro 15 --gaps 5 "" > $OUT/ax_prof.txt 2>&1
  echo "prof rc=$?"; grep -v "^\s*$" $OUT/ax_prof.txt | grep -v "^ *nvjet\|^---\|Name\|^cudnn\|^void\|_kernel " | head -24
fi; echo "  [t=$((SECONDS-T0))s]"
