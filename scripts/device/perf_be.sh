#!/usr/bin/env bash
# Device call BE (one H100): the variants that take the fused Pre-LN walk, with the code of this writing (the
# operations as triton_ops, no unneeded stream copy, the walk's inductor option `triton.coalesce_tiling_analysis`
# off): only the baseline had been measured with the option (calls BB, BC). Then target 1 once more if time allows.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/be_pip.txt 2>&1
T0=$SECONDS
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 570 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/be_$2.json > $OUT/be_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/be_$2.txt | grep -A12 "^recipe" | cut -c1-220; echo "  [t=$((SECONDS-T0))s]"
}
b 400 walk gpt2_124m --steps 30 --all-variants --variant norm=rmsnorm --variant qk_norm --variant value_residual \
  --variant residual=laurel-lr
b 150 ref gpt2_124m --steps 30 --reference
