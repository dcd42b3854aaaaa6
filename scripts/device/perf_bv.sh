#!/usr/bin/env bash
# Device call BV (one H100): plain logging steps write their row a step late (engine.write_row): the engine's step
# profiled again (engine_profile.py: BU had 3.0-4.7 ms of GPU idle a step), then bench with the reference, model and
# block alternated twice (target 1, and the units compared again).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bv_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 150 python3 scripts/device/engine_profile.py > $OUT/bv_profile.txt 2>&1
echo "== profile rc=$? [t=$((SECONDS-T0))s]"; sed -n '/^====/,$p' $OUT/bv_profile.txt | grep -v "^\s*$" | head -18 | cut -c1-170
i=0
for u in model block model block; do
  i=$((i+1))
  timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --set train.compile_unit=$u \
    --json $OUT/bv_bench_$i.json > $OUT/bv_bench_$i.txt 2>&1
  echo "== bench $i ($u) rc=$? [t=$((SECONDS-T0))s]"; grep -A2 "^recipe" $OUT/bv_bench_$i.txt | tail -2 | cut -c1-175
done
