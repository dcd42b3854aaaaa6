#!/usr/bin/env bash
# Device call AD (one H100): the variants at the real size (12 layers, the recipe's 60-sequence step) now that every
# variant's MLP and c_attn take the fused operations: the norms and the layouts against the baseline.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ad_pip.txt 2>&1
T0=$SECONDS
V=""
for v in norm=rmsnorm norm=scalenorm norm=dyt block=post block=sandwich block=peri block=mixln block=deepnorm \
         block=parallel block=parallel_neox block=resi_dual; do V="$V --variant $v"; done
timeout -k 5 570 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants $V --json $OUT/ad_variants.json \
  > $OUT/ad_variants.txt 2>&1
grep -E "^run bench|^finished" $OUT/ad_variants.txt | sed -E 's/data.dataset=synthetic,data.eval_tokens=1025//; s/checkpoint .*//'
tail -16 $OUT/ad_variants.txt; echo "[t=$((SECONDS-T0))s]"
