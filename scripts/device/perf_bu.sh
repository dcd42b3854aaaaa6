#!/usr/bin/env bash
# Device call BU (one H100): where the engine's step compiled by block loses 0.75 ms against one graph (BQ, BS) while
# the bare step does not (BR): the engine's own loop profiled both ways, alternated twice (engine_profile.py).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bu_pip.txt 2>&1
T0=$SECONDS
i=0
for u in model block model block; do
  i=$((i+1))
  timeout -k 5 150 python3 scripts/device/engine_profile.py --set train.compile_unit=$u > $OUT/bu_$i.txt 2>&1
  echo "== $i ($u) rc=$? [t=$((SECONDS-T0))s]"; sed -n '/^====/,$p' $OUT/bu_$i.txt | grep -v "^\s*$" | head -32 | cut -c1-170
  grep -A2 "^recipe" $OUT/bu_$i.txt | cut -c1-150
done
