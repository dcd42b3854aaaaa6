#!/usr/bin/env bash
# Device call CN (one H100): the projection's weight-gradient matmul of hyper_step's and mhc_step's backward with
# autocast off (compiled under autocast it had cast H' to bf16 first: call CM's profile). The GPU tests of both steps;
# bench hyper and mhc against the baseline; the profile of hyper's step.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cn_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py tests/test_mhcstep.py -k "gpu or autocast" --tb=short \
  > $OUT/cn_tests.txt 2>&1; tail -2 $OUT/cn_tests.txt; grep -E "^E  " $OUT/cn_tests.txt | cut -c1-300 | head -12
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
  --variant residual=mhc --json $OUT/cn_bench.json > $OUT/cn_bench.txt 2>&1; echo "bench rc=$?"
tail -4 $OUT/cn_bench.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 12 \
  --csv $OUT/cn_kernels.csv "arch.residual=hyper" > $OUT/cn_profile.txt 2>&1; echo "profile rc=$?"
grep -E "====|GPU busy" $OUT/cn_profile.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
