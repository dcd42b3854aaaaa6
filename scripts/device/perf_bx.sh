#!/usr/bin/env bash
# Device call BX (one H100): logging without a drain, done right (a plain logging step's loss and gradient norm copied
# to pinned memory with the step's verdict and read once the next step is queued; window boundaries as CUDA events).
# The engine's loop profiled (idle a step against BU's 3.0-4.7 ms), bench with the reference, model and block
# alternated twice (target 1), then target 5's stamped 300-step cold run with the default, whose output lines' times
# check bench's event-timed windows.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bx_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 scripts/device/engine_profile.py > $OUT/bx_profile.txt 2>&1
echo "== profile rc=$? [t=$((SECONDS-T0))s]"; sed -n '/^====/,$p' $OUT/bx_profile.txt | grep -v "^\s*$" | head -20 | cut -c1-170
i=0
for u in model block model block; do
  i=$((i+1))
  timeout -k 5 120 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --set train.compile_unit=$u \
    --json $OUT/bx_bench_$i.json > $OUT/bx_bench_$i.txt 2>&1
  echo "== bench $i ($u) rc=$? [t=$((SECONDS-T0))s]"; grep -A2 "^recipe" $OUT/bx_bench_$i.txt | tail -2 | cut -c1-175
done
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bx_prep.txt 2>&1; tail -1 $OUT/bx_prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 200 python3 scripts/device/stamped_run.py $OUT/bx_cold.txt -- python3 -m gptablate_cli train gpt2_124m \
  --set data.dataset=pysrc --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "\] (# resolved|run |model:|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bx_cold.txt | cut -c1-150
for f in /tmp/gruns/*/metrics.jsonl; do
  python3 -c 'import json,sys; rows=[*map(json.loads, open(sys.argv[1]))]; print([(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in rows if "val_s" in r or r["step"] in (10, 20, 160, 290)]); print("windows ms/step:", [round(61440e3 / r["tokens_per_s"], 1) for r in rows])' "$f"
done
