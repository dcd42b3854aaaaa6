#!/usr/bin/env bash
# Device call Z (one H100): add_norm's sweep with one-warp programs (a row's sums stay inside a warp: no barriers,
# as compiled for sm_90), written into the module; the 124M step against the reference.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/z_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 150 python3 scripts/device/addnorm_bench.py --write-best > $OUT/z_an.txt 2>&1
grep -E "forward rows|backward programs|fastest|written|Error" $OUT/z_an.txt; echo "[t=$((SECONDS-T0))s]"
grep -n "^FWD\|^BWD" gptablate/model/addnorm.py gptablate/model/biasgelu.py
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/z_bench.json \
  > $OUT/z_bench.txt 2>&1
tail -3 $OUT/z_bench.txt; echo "[t=$((SECONDS-T0))s]"
