#!/usr/bin/env bash
# Device call CR (one H100): hyper_step's backward pipelined over 2 stages (STAGES = (1, 2), from call CQ): the kernel
# check and the GPU model tests; the norm case's shapes swept again at those stages (hyperstep_bench.py --norm-only
# --write-best); bench hyper against the baseline.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cr_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -2
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py -k "model_with_the_kernels" --tb=short > $OUT/cr_tests.txt 2>&1
tail -1 $OUT/cr_tests.txt; grep -E "^E  " $OUT/cr_tests.txt | cut -c1-300 | head -6; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/hyperstep_bench.py --norm-only --write-best > $OUT/cr_kbench.txt 2>&1
echo "kbench rc=$?"; grep -E "site|best|matmul|wrote|failed" $OUT/cr_kbench.txt | cut -c1-220; echo "[t=$((SECONDS-T0))s]"
grep -n "\"norm\":\|^STAGES" gptablate/model/hyperstep.py
timeout -k 5 $((585 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper --json $OUT/cr_bench.json > $OUT/cr_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/cr_bench.txt; echo "[t=$((SECONDS-T0))s]"
