#!/usr/bin/env bash
# Device call FS (one H100): mHC's Sinkhorn backward keeping each round's input in a scratch tensor and walking the
# rounds back, where it replayed rounds 1..t-1 for each t (.dev/ab/sinkhorn_3d6.py, `git show
# 3d638a3:gptablate/model/sinkhorn.py`): its GPU test; the two side by side (sinkhorn_bench.py); mhc's step.
source "$(dirname "$0")/common.sh" fs
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 200 python3 -m pytest -q tests/test_sinkhorn.py -k "gpu" --tb=short > $OUT/fs_tests.txt 2>&1
tail -1 $OUT/fs_tests.txt; grep -E "^E  " $OUT/fs_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/sinkhorn_bench.py before=.dev/ab/sinkhorn_3d6.py \
    stored=gptablate/model/sinkhorn.py 2>&1 | grep -vi warn | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=mhc \
    2>&1 | grep -vi warn | tail -3
echo "[t=$((SECONDS-T0))s]"
