#!/usr/bin/env bash
# Device call AL (one H100): mHC's stream work between two sites as one operation (model/mhcstep.py): its GPU check,
# the kernels' sweep (mhcstep_bench.py --write-best), then mhc against the baseline at the real size with the tuning
# the sweep wrote.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/al_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/mhcstep_kernel_check.py > $OUT/al_check.txt 2>&1; echo "check rc=$?"
tail -3 $OUT/al_check.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 scripts/device/mhcstep_bench.py --write-best > $OUT/al_sweep.txt 2>&1; echo "sweep rc=$?"
tail -8 $OUT/al_sweep.txt; grep "^TUNING" gptablate/model/mhcstep.py; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((560 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=mhc --json $OUT/al_mhc.json > $OUT/al_mhc.txt 2>&1
grep -E "^finished" $OUT/al_mhc.txt | sed -E 's/checkpoint .*//'; tail -5 $OUT/al_mhc.txt
echo "[t=$((SECONDS-T0))s]"
