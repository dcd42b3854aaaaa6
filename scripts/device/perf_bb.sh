#!/usr/bin/env bash
# Device call BB (one H100): the 60-sequence step with the operations as triton_ops, with inductor's coalescing tiling
# analysis off (TORCHINDUCTOR_COALESCE_TILING_ANALYSIS=0: does the embedding's backward go back to the 1-D kernel of
# the opaque form, 0.28 ms, from the 2-D tiled 1.21 ms?), and opaque; the first again at the end (order effects).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bb_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...
  if [ $((SECONDS - T0 + $1)) -gt 575 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bb_$2.json > $OUT/bb_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bb_$2.txt | grep -A1 "^recipe" | tail -1 | cut -c1-200; echo "  [t=$((SECONDS-T0))s]"
}
b 100 op1 gpt2_124m --steps 30
export TORCHINDUCTOR_COALESCE_TILING_ANALYSIS=0; b 100 nocoal gpt2_124m --steps 30
timeout -k 5 100 python3 scripts/profile_step.py --layers 12 --micro 60 --csv $OUT/bb_prof.csv "" > $OUT/bb_prof.txt 2>&1
echo "prof rc=$?"; grep "====\|^  [a-z]" $OUT/bb_prof.txt | head -12; grep "embedding" $OUT/bb_prof.csv | cut -c1-150
unset TORCHINDUCTOR_COALESCE_TILING_ANALYSIS; echo "  [t=$((SECONDS-T0))s]"
export GPTABLATE_OPAQUE_OPS=1; b 100 opq gpt2_124m --steps 30; unset GPTABLATE_OPAQUE_OPS
b 100 op2 gpt2_124m --steps 30
