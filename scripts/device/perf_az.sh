#!/usr/bin/env bash
# Device call AZ (one H100): inductor's code for the 60-sequence step with the fused operations as triton_ops and
# opaque (call AY: the kernel that adds the embedding output's two gradients and runs the embedding's backward took
# 1.22 ms a step with triton_ops, 0.28 ms opaque). The output code of each, gzipped, and that kernel's source.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/az_pip.txt 2>&1
T0=$SECONDS
for v in op opq; do
  if [ $v = opq ]; then export GPTABLATE_OPAQUE_OPS=1; fi
  TORCH_LOGS=output_code timeout -k 5 200 python3 scripts/profile_step.py --layers 12 --micro 60 "" > $OUT/az_$v.txt 2> $OUT/az_code_$v.txt
  echo "$v rc=$?"; grep "====" $OUT/az_$v.txt
  grep -n "embedding_dense_backward" $OUT/az_code_$v.txt | cut -c1-220 | head -20
  gzip -9 $OUT/az_code_$v.txt; ls -la $OUT/az_code_$v.txt.gz; echo "  [t=$((SECONDS-T0))s]"
done
