#!/usr/bin/env bash
# Device call CU (one H100): hyper_step's kernels without the stream-sized layout conversion (the 2-byte rows' accesses
# narrowed to the fp32 streams' four a thread) and with the forward's stream statistics in one reduction, against the
# code before (copies of hyperstep.py carried in .dev/ab); the padding's cost (--widths); the kernel check; the step.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cu_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 150 python3 tests/hyperstep_kernel_check.py 2>&1 | tail -1
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 260 python3 scripts/device/hyperstep_ab.py head=.dev/ab/head.py narrow=.dev/ab/narrow.py \
    narrow_onesum=gptablate/model/hyperstep.py 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 240 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper 2>&1 | tail -6 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 90 python3 scripts/device/hyperstep_bench.py --widths 2>&1 | grep "^D " | cut -c1-160
echo "[t=$((SECONDS-T0))s]"
