#!/usr/bin/env bash
# Device call H (one H100): where the 12-layer step's GPU idles (gaps between kernels, with the host's
# launch times); cold compilation with and without the garbage-collector pause (fresh inductor caches).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
timeout 150 python3 scripts/profile_step.py --layers 12 --micro 60 --top 40 --gaps 30 "" > $OUT/h_gaps.txt 2>&1
grep -A 10 "====" $OUT/h_gaps.txt | cut -c1-160; sed -n '/idle:/,$p' $OUT/h_gaps.txt | cut -c1-170
echo "[t=$((SECONDS-T0))s]"
for v in pause nopause pause; do
  PP=""; [ $v = nopause ] && PP=$PWD/scripts/device/nopause
  TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) PYTHONPATH=$PP timeout 150 python3 -m gptablate_cli bench gpt2_124m --steps 6 \
    --json $OUT/h_$v.json 2>&1 | tail -2 | sed "s/^/$v: /"
  echo "[t=$((SECONDS-T0))s]"
done
