#!/usr/bin/env bash
# Device call CT (one H100): after the review's refactors (hyper_step's loops through _nth_token, kernels.empties,
# hyperstep_bench's step_calls): both steps' kernel checks, the hyper GPU tests, and the bench's stages sweep as a
# smoke test of its refactor (nothing written).
set -uo pipefail
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/ct_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
timeout -k 5 150 python3 tests/hyperstatic_kernel_check.py 2>&1 | tail -1
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py -k "gpu" --tb=short > $OUT/ct_tests.txt 2>&1
tail -1 $OUT/ct_tests.txt; grep -E "^E  " $OUT/ct_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 120 python3 scripts/device/hyperstep_bench.py --stages-only 2>&1 | grep -E "stages|best" | cut -c1-160
echo "[t=$((SECONDS-T0))s]"
