#!/usr/bin/env bash
# Device call AN (one H100): mhc_step's sweep around AM's best (more stages, 64 tokens a program), its GPU check with
# the tuning it wrote, then mhc against the baseline at the real size with it.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/an_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 260 python3 scripts/device/mhcstep_bench.py --write-best > $OUT/an_sweep.txt 2>&1; echo "sweep rc=$?"
tail -8 $OUT/an_sweep.txt; grep "^TUNING" gptablate/model/mhcstep.py; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 120 python3 tests/mhcstep_kernel_check.py > $OUT/an_check.txt 2>&1; echo "check (the written tuning) rc=$?"
tail -3 $OUT/an_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((560 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=mhc --json $OUT/an_mhc.json > $OUT/an_mhc.txt 2>&1
grep -E "^finished" $OUT/an_mhc.txt | sed -E 's/checkpoint .*//'; tail -5 $OUT/an_mhc.txt
echo "[t=$((SECONDS-T0))s]"
