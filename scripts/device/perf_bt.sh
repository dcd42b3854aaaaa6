#!/usr/bin/env bash
# Device call BT (one H100): the session's final code: the compiled-model check one graph and by block (the walk was
# refactored into prenorm_block), target 5's stamped 300-step cold run with the default once more, target 1.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bt_pip.txt 2>&1
T0=$SECONDS
for u in "" block; do
  timeout -k 5 150 python3 tests/compiled_kernels_check.py $u > $OUT/bt_check$u.txt 2>&1; echo "check $u rc=$?"; tail -1 $OUT/bt_check$u.txt
done
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bt_prep.txt 2>&1; tail -1 $OUT/bt_prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 300 python3 scripts/device/stamped_run.py $OUT/bt_cold.txt -- python3 -m gptablate_cli train gpt2_124m \
  --set data.dataset=pysrc --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bt_cold.txt | cut -c1-170
for f in /tmp/gruns/*/metrics.jsonl; do
  python3 -c 'import json,sys; print(sys.argv[1][11:40], [(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in map(json.loads, open(sys.argv[1])) if "val_s" in r or r["step"] in (10, 20, 160, 290)])' "$f"
done
timeout -k 5 150 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/bt_bench.json > $OUT/bt_bench.txt 2>&1
echo "bench rc=$?"; grep -A2 "^recipe" $OUT/bt_bench.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
