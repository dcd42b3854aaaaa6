#!/usr/bin/env bash
# Device call CY (one H100): the GPU model test at its original limit (every gradient to 1e-4) with the committed
# kernels, and the largest gradient differences it sees (CV's failure was with the one-pass statistics, since dropped).
# It ran with the model pair inline; the test's kernels_against_per_site_on_gpu is that code, now shared.
source "$(dirname "$0")/common.sh" cy
python3 -m pip install -q pytest > /dev/null 2>&1
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/cy_tests.txt 2>&1
tail -1 $OUT/cy_tests.txt; grep -E "^E  " $OUT/cy_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 - <<'PY' 2>&1 | grep -v -i warn
import sys, torch
sys.path.insert(0, "tests")
from test_hyperstep import kernels_against_per_site_on_gpu
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
for fold in ["", "layernorm", "rmsnorm"]:
    errors = kernels_against_per_site_on_gpu(fold, "true")[3]
    print(fold or "no fold", [(f"{e:.1e}", n) for e, n in errors[-3:]], flush=True)
PY
echo "[t=$((SECONDS-T0))s]"
