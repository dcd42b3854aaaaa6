#!/usr/bin/env bash
# Device call AE (one H100): the variants at the real size (12 layers, the recipe's 60-sequence step) now that every
# variant's MLP and c_attn take the fused operations: the single-stream residuals, qk_norm and value_residual
# against the baseline.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ae_pip.txt 2>&1
T0=$SECONDS
V=""
for v in residual=rezero residual=gates residual=layerscale residual=x0 residual=learned_scaling \
         residual=prores residual=laurel residual=laurel-lr qk_norm value_residual; do V="$V --variant $v"; done
timeout -k 5 570 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants $V --json $OUT/ae_variants.json \
  > $OUT/ae_variants.txt 2>&1
grep -E "^run bench|^finished" $OUT/ae_variants.txt | sed -E 's/data.dataset=synthetic,data.eval_tokens=1025//; s/checkpoint .*//'
tail -16 $OUT/ae_variants.txt; echo "[t=$((SECONDS-T0))s]"
