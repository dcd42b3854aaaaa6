#!/usr/bin/env bash
# Device call AF (one H100): the variants at the real size (12 layers, the recipe's 60-sequence step) now that every
# variant's MLP and c_attn take the fused operations: the multi-stream residuals (denseformer, attnres, hyper,
# mhc) against the baseline.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/af_pip.txt 2>&1
T0=$SECONDS
V=""
for v in residual=denseformer residual=attnres residual=attnres-full residual=hyper residual=hyper-static \
         residual=mhc; do V="$V --variant $v"; done
timeout -k 5 570 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants $V --json $OUT/af_variants.json \
  > $OUT/af_variants.txt 2>&1
grep -E "^run bench|^finished" $OUT/af_variants.txt | sed -E 's/data.dataset=synthetic,data.eval_tokens=1025//; s/checkpoint .*//'
tail -16 $OUT/af_variants.txt; echo "[t=$((SECONDS-T0))s]"
