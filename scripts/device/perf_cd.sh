#!/usr/bin/env bash
# Device call CD (one fresh H100): target 5's stamped 300-step cold run with the default on a fourth machine, its
# estimate computed by arm_estimate.py (until now by hand).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
L=/tmp/cd; mkdir -p $L
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $L/pip.txt 2>&1
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $L/prep.txt 2>&1; tail -1 $L/prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 200 python3 scripts/device/stamped_run.py $OUT/cd_cold.txt -- python3 -m gptablate_cli train gpt2_124m \
  --set data.dataset=pysrc --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$?"
grep -E "\] (run |model:|step (10|20|150|160|290|300)/|exit)" $OUT/cd_cold.txt | cut -c1-150
python3 scripts/device/arm_estimate.py $OUT/cd_cold.txt
cp /tmp/gruns/*/metrics.jsonl $OUT/cd_metrics.jsonl
