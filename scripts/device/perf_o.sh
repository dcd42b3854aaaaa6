#!/usr/bin/env bash
# Device call O (one H100): hyper_step's kernels rewritten (feature sums gathered into one reduction across
# warps): their GPU test, the sweep by grid, warps and register cap (--write-best sets the fastest in this
# call's copy of model/hyperstep.py), then hyper static and hyper at the real size against the baseline.
# Output to files, not pipes (compile workers keep a pipe open).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/o_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 -m pytest -q -k "gpu" tests/test_hyperstep.py > $OUT/o_test.txt 2>&1
grep -E "passed|failed|FAILED|Error|assert" $OUT/o_test.txt | head -8
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 scripts/device/hyperstep_bench.py --write-best > $OUT/o_hsbench.txt 2>&1
grep -E "best|site|matmul|wrote|failed" $OUT/o_hsbench.txt | head -20
grep -E "^(PROGRAMS_PER_SM|FWD_WARPS|BWD_WARPS)" gptablate/model/hyperstep.py
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-static \
  --variant residual=hyper --json $OUT/o_var.json > $OUT/o_var.txt 2>&1
grep -E "^run bench|^finished" $OUT/o_var.txt | cut -c1-150; tail -6 $OUT/o_var.txt
echo "[t=$((SECONDS-T0))s]"
