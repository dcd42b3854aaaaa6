#!/usr/bin/env bash
# Device call EZ (one H100, EY's machine): the GPU model test's largest gradient differences (kernels against the
# per-site code, dynamic, each fold), which failed in EY for two cases, with hyper_step's parts and with the code before
# (.dev/ab/hyperstep_head.py copied over hyperstep.py after the first run); the GPU kernel checks on their own; then the
# code before against the parts at 1.5B's streams (16,384 x 4 x 1,600).
source "$(dirname "$0")/common.sh" ez
python3 -m pip install -q pytest > /dev/null 2>&1
errors() {
timeout -k 5 150 python3 - <<'PY' 2>&1 | grep -v -i warn
import sys, torch
sys.path.insert(0, "tests")
from test_hyperstep import kernels_against_per_site_on_gpu
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
for fold in ["", "layernorm", "rmsnorm"]:
    errors = kernels_against_per_site_on_gpu(fold, "true")[3]
    print(fold or "no fold", [(f"{e:.1e}", n) for e, n in errors[-4:]], flush=True)
PY
}
echo "parts:"; errors; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 250 python3 -m pytest -q tests/test_hyperstep.py -k "kernels_match_reference_on_gpu" --tb=short \
    > $OUT/ez_tests.txt 2>&1
tail -1 $OUT/ez_tests.txt; grep -E "^E  " $OUT/ez_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/hyperstep_ab.py head=.dev/ab/hyperstep_head.py \
    parts=gptablate/model/hyperstep.py --warps 2 --shape 16384,1600 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
cp .dev/ab/hyperstep_head.py gptablate/model/hyperstep.py
echo "the code before:"; errors; echo "[t=$((SECONDS-T0))s]"
