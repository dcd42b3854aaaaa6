#!/usr/bin/env bash
# Device call CL (one H100): dynamic Hyper-Connections with each site's norm folded into hyper_step (the forward
# writes h = N(x_in) in bf16, the backward reads dh): the kernel check and the hyper tests on a GPU, the fold's kernel
# sweep (hyperstep_bench.py --norm-only --write-best: TUNING's "norm" case), then bench hyper against the baseline.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cl_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -3
timeout -k 5 240 python3 -m pytest -q tests/test_hyperstep.py 2>&1 | tail -4; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 scripts/device/hyperstep_bench.py --norm-only --write-best > $OUT/cl_kbench.txt 2>&1
echo "kbench rc=$?"; grep -E "site|best|matmul|wrote|failed" $OUT/cl_kbench.txt | cut -c1-220; echo "[t=$((SECONDS-T0))s]"
grep -n '"norm":' gptablate/model/hyperstep.py
timeout -k 5 $((585 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper --json $OUT/cl_bench.json > $OUT/cl_bench.txt 2>&1; echo "bench rc=$?"
tail -4 $OUT/cl_bench.txt; echo "[t=$((SECONDS-T0))s]"
