#!/usr/bin/env bash
# Device call Q (one H100): as perf_p.sh, with the grid as tokens per program (many waves) rather than
# programs per SM, and the sweep's fix (call P's stopped at the static case). The GPU test, the sweep
# (--write-best sets each case's fastest in this call's copy of model/hyperstep.py), then hyper static
# and hyper at the real size against the baseline. Output to files, not pipes.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/q_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 -m pytest -q -k "gpu" tests/test_hyperstep.py > $OUT/q_test.txt 2>&1
grep -E "passed|failed|FAILED|Error|assert" $OUT/q_test.txt | head -8
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 scripts/device/hyperstep_bench.py --write-best > $OUT/q_hsbench.txt 2>&1
grep -E "best|site|matmul|wrote|failed" $OUT/q_hsbench.txt | head -20
grep -A3 "^TUNING" gptablate/model/hyperstep.py
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-static \
  --variant residual=hyper --json $OUT/q_var.json > $OUT/q_var.txt 2>&1
grep -E "^run bench|^finished" $OUT/q_var.txt | cut -c1-150; tail -6 $OUT/q_var.txt
echo "[t=$((SECONDS-T0))s]"
