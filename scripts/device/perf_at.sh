#!/usr/bin/env bash
# Device call AT (one H100): LAuReL-LR's fused walk with add_norm also writing the stream's bf16 copy that A x reads and
# adding that copy's gradient in its backward: the add_norm GPU check (second term and copy), laurel lr against the
# baseline at the real size, and its profile.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/at_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/addnorm_kernel_check.py > $OUT/at_check.txt 2>&1; echo "check rc=$?"
tail -2 $OUT/at_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 30 --all-variants --variant residual=laurel-lr \
  --json $OUT/at_laurel.json > $OUT/at_laurel.txt 2>&1; echo "bench rc=$?"
tail -4 $OUT/at_laurel.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 scripts/profile_step.py --layers 12 --micro 60 --top 12 "arch.residual=laurel,arch.laurel.mode=lr" 2>&1 | grep -v "^\s*$" | cut -c1-160 | head -30; echo "[t=$((SECONDS-T0))s]"
