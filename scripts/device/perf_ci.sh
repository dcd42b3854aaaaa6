#!/usr/bin/env bash
# Device call CI (one H100): the sites' norms folded into the static Hyper-Connections kernels. The kernel check and the
# hyper tests on a GPU (the static model with the fold against the per-site code, LayerNorm and RMSNorm); the kernels'
# sweep at the 124M site with the fold against the step plus inductor's LayerNorm (--write-best); then hyper static and
# the baseline at the real size.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ci_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 120 python3 tests/hyperstatic_kernel_check.py 2>&1 | tail -3; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py 2>&1 | tail -6; echo "[t=$((SECONDS-T0))s]"
(cd scripts/device && timeout -k 5 200 python3 hyperstatic_bench.py --write-best --norm-only) > $OUT/ci_kbench.txt 2>&1
grep -E "best|a site|wrote|failed" $OUT/ci_kbench.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
git diff --stat gptablate/model/hyperstatic.py; git diff gptablate/model/hyperstatic.py | grep "^[+-][A-Z]" 
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-static \
  --json $OUT/ci_bench.json > $OUT/ci_bench.txt 2>&1; echo "bench rc=$?"; tail -8 $OUT/ci_bench.txt
echo "[t=$((SECONDS-T0))s]"
