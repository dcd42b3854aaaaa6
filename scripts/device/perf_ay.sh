#!/usr/bin/env bash
# Device call AY (one H100, AX's machine): the 60-sequence step with the fused operations as triton_ops against the
# same code with them opaque (GPTABLATE_OPAQUE_OPS=1, custom ops as before call AX): AX measured 1.181x the reference,
# the lowest ratio yet; is it the change or the machine? Bench and a profile of each.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ay_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...
  if [ $((SECONDS - T0 + $1)) -gt 575 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/ay_$2.json > $OUT/ay_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/ay_$2.txt | tail -2 | cut -c1-200; echo "  [t=$((SECONDS-T0))s]"
}
p() {  # name
  timeout -k 5 130 python3 scripts/profile_step.py --layers 12 --micro 60 --csv $OUT/ay_$1.csv "" > $OUT/ay_$1.txt 2>&1
  echo "$1 rc=$?"; grep -v "^\s*$" $OUT/ay_$1.txt | grep "====\|^  [a-z]" | head -12; echo "  [t=$((SECONDS-T0))s]"
}
b 120 op gpt2_124m --steps 30
export GPTABLATE_OPAQUE_OPS=1; b 120 opq gpt2_124m --steps 30; unset GPTABLATE_OPAQUE_OPS
p prof_op
export GPTABLATE_OPAQUE_OPS=1; p prof_opq; unset GPTABLATE_OPAQUE_OPS
