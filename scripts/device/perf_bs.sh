#!/usr/bin/env bash
# Device call BS (one H100): the engine's step compiled by block against one graph, settled: call BQ's bench had block
# 0.9% slower (two pairs), call BR's bare step had it 0.35% faster with the same kernels. Here six bench processes
# alternate model and block, each with the reference in the same process (its ratio cancels the GPU's drift).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bs_pip.txt 2>&1
T0=$SECONDS
i=0
for u in model block model block model block; do
  i=$((i+1))
  timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 40 --reference --set train.compile_unit=$u \
    --json $OUT/bs_bench_$i.json > $OUT/bs_bench_$i.txt 2>&1
  echo "== bench $i ($u) rc=$? [t=$((SECONDS-T0))s]"; grep -A2 "^recipe" $OUT/bs_bench_$i.txt | tail -2 | cut -c1-175
done
