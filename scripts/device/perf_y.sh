#!/usr/bin/env bash
# Device call Y (one H100): the GPU's idle time in the 12-layer step with the fused operations (their launches go
# through Python), and the same step under CUDA graphs (torch.compile mode reduce-overhead).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/y_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 200 python3 scripts/profile_step.py --layers 12 --micro 60 --gaps 12 "" > $OUT/y_gaps.txt 2>&1
grep -E "^====|idle|queued" $OUT/y_gaps.txt | head -16; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 python3 scripts/profile_step.py --layers 12 --micro 60 --mode reduce-overhead "" > $OUT/y_graphs.txt 2>&1
grep -E "^====|Error" $OUT/y_graphs.txt | head -5; echo "[t=$((SECONDS-T0))s]"
