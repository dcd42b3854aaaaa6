#!/usr/bin/env bash
# Device call CF (one H100): the static hyper step with its backward loading a tile's streams before any store: its
# GPU check, its sweep (against hyperstep.py's token-row kernels for the same site), the check again with the tuning
# written, hyper static against the baseline at the real size, and where hyper static's step time goes.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cf_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/hyperstatic_kernel_check.py > $OUT/cf_check0.txt 2>&1; echo "check (untuned) rc=$?"
tail -3 $OUT/cf_check0.txt
timeout -k 5 240 python3 scripts/device/hyperstatic_bench.py --write-best > $OUT/cf_sweep.txt 2>&1; echo "sweep rc=$?"
tail -4 $OUT/cf_sweep.txt; grep -E "^(FWD|BWD) =" gptablate/model/hyperstatic.py; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 120 python3 tests/hyperstatic_kernel_check.py > $OUT/cf_check1.txt 2>&1; echo "check (tuned) rc=$?"
tail -3 $OUT/cf_check1.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((570 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper-static --json $OUT/cf_static.json > $OUT/cf_static.txt 2>&1
echo "bench rc=$?"; tail -6 $OUT/cf_static.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((580 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 20 \
  "arch.residual=hyper,arch.hyper.dynamic=false" > $OUT/cf_profile.txt 2>&1; echo "profile rc=$?"
head -40 $OUT/cf_profile.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
