#!/usr/bin/env bash
# Device call BW (one H100): after the windows were made to tile the run (BV's bench figures left out the time a late
# row took to write while the GPU ran on): bench with the reference, model and block alternated twice (target 1), then
# target 5's stamped 300-step cold run with the default.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bw_pip.txt 2>&1
T0=$SECONDS
i=0
for u in model block model block; do
  i=$((i+1))
  timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --set train.compile_unit=$u \
    --json $OUT/bw_bench_$i.json > $OUT/bw_bench_$i.txt 2>&1
  echo "== bench $i ($u) rc=$? [t=$((SECONDS-T0))s]"; grep -A2 "^recipe" $OUT/bw_bench_$i.txt | tail -2 | cut -c1-175
done
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bw_prep.txt 2>&1; tail -1 $OUT/bw_prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 300 python3 scripts/device/stamped_run.py $OUT/bw_cold.txt -- python3 -m gptablate_cli train gpt2_124m \
  --set data.dataset=pysrc --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "\] (# resolved|run |model:|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bw_cold.txt | cut -c1-150
for f in /tmp/gruns/*/metrics.jsonl; do
  python3 -c 'import json,sys; print(sys.argv[1][11:40], [(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in map(json.loads, open(sys.argv[1])) if "val_s" in r or r["step"] in (10, 20, 160, 290)])' "$f"
done
