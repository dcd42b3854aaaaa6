#!/usr/bin/env bash
# Device call CE (one H100): the static hyper step on a flat grid (model/hyperstatic.py): its GPU check, its sweep
# (against hyperstep.py's token-row kernels for the same site), the check again with the tuning written, then hyper
# static against the baseline at the real size.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ce_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/hyperstatic_kernel_check.py > $OUT/ce_check0.txt 2>&1; echo "check (untuned) rc=$?"
tail -3 $OUT/ce_check0.txt
timeout -k 5 240 python3 scripts/device/hyperstatic_bench.py --write-best > $OUT/ce_sweep.txt 2>&1; echo "sweep rc=$?"
tail -4 $OUT/ce_sweep.txt; grep -E "^(FWD|BWD) =" gptablate/model/hyperstatic.py; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 120 python3 tests/hyperstatic_kernel_check.py > $OUT/ce_check1.txt 2>&1; echo "check (tuned) rc=$?"
tail -3 $OUT/ce_check1.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((570 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper-static --json $OUT/ce_static.json > $OUT/ce_static.txt 2>&1
echo "bench rc=$?"; tail -6 $OUT/ce_static.txt; echo "[t=$((SECONDS-T0))s]"
