#!/usr/bin/env bash
# Device call FJ (one H100): hyper_step after a clean-up (_tile without the masks no kernel used, the parts' sums of
# products through one helper, _products; compiled for sm_90 the forward is the same code, the backward 3,384
# instructions and 120 bytes of stack against 3,392 and 136): the GPU tests under the machine's Triton, then the
# committed code before it (.dev/ab/hyperstep_5f6.py, `git show 5f6ff34:gptablate/model/hyperstep.py`) against it.
source "$(dirname "$0")/common.sh" fj
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 400 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/fj_tests.txt 2>&1
tail -1 $OUT/fj_tests.txt; grep -E "^E  " $OUT/fj_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/device/hyperstep_ab.py before=.dev/ab/hyperstep_5f6.py \
    after=gptablate/model/hyperstep.py --warps 2 2>&1 | grep -vi warn | grep -E "^[a-z]|own TUNING|best" | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
