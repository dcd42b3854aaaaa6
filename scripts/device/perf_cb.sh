#!/usr/bin/env bash
# Device call CB (one fresh H100): target 5's stamped 300-step cold run with the default (by block) on a third
# machine, then the variants that now compile by block by default (rmsnorm, qk_norm, value_residual) against the
# baseline of the same process (target 2's rows for them were measured as one graph).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
L=/tmp/cb; mkdir -p $L
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $L/pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $L/prep.txt 2>&1; tail -1 $L/prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 200 python3 scripts/device/stamped_run.py $OUT/cb_cold.txt -- python3 -m gptablate_cli train gpt2_124m \
  --set data.dataset=pysrc --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "\] (# resolved|run |model:|step (10|20|150|160|290|300)/|finished|exit)" $OUT/cb_cold.txt | cut -c1-150
f=$(ls -t /tmp/gruns/*/metrics.jsonl | head -1)
python3 -c 'import json,sys; rows=[*map(json.loads, open(sys.argv[1]))]; print([(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in rows if "val_s" in r or r["step"] in (10, 20, 160, 290)]); w=[61440e3 / r["tokens_per_s"] for r in rows[1:]]; print("windows ms/step: mean %.2f" % (sum(w)/len(w)))' "$f"
unset TORCHINDUCTOR_CACHE_DIR TRITON_CACHE_DIR
timeout -k 5 330 python3 -m gptablate_cli bench gpt2_124m --steps 30 --all-variants --variant norm=rmsnorm \
  --variant qk_norm --variant value_residual --json $OUT/cb_variants.json > $L/variants.txt 2>&1
echo "== variants rc=$? [t=$((SECONDS-T0))s]"; grep -v "^\s*$" $L/variants.txt | grep -A8 "^recipe" | cut -c1-200
cp $L/variants.txt $OUT/cb_variants.txt
