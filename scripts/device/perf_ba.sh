#!/usr/bin/env bash
# Device call BA (one H100): the baseline after the fix of the walk's stream copy (every norm had written a bf16 copy
# of the stream since call AT, and the backward read a zeros gradient for it) with the operations as triton_ops:
# target 1 against the reference; the same step with the operations opaque (GPTABLATE_OPAQUE_OPS=1); its profile
# (is the embedding's backward still the 2-D tiled 1.2 ms kernel of call AZ?); the 15-sequence step; laurel lr again
# (its 1.052x of call AT was against the baseline that paid for the copy too).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ba_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...
  if [ $((SECONDS - T0 + $1)) -gt 575 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/ba_$2.json > $OUT/ba_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/ba_$2.txt | grep -A3 "^recipe" | cut -c1-230; echo "  [t=$((SECONDS-T0))s]"
}
b 150 ref gpt2_124m --steps 30 --reference
export GPTABLATE_OPAQUE_OPS=1; b 100 opq gpt2_124m --steps 30; unset GPTABLATE_OPAQUE_OPS
timeout -k 5 120 python3 scripts/profile_step.py --layers 12 --micro 60 --csv $OUT/ba_prof.csv "" > $OUT/ba_prof.txt 2>&1
echo "prof rc=$?"; grep "====\|^  [a-z]" $OUT/ba_prof.txt | head -12
grep "embedding" $OUT/ba_prof.csv | cut -c1-150; echo "  [t=$((SECONDS-T0))s]"
b 100 f15 gpt2_124m --steps 30 --set train.batch_size=15 --set train.micro_batch=15
b 150 laurel gpt2_124m --steps 30 --all-variants --variant residual=laurel-lr
