#!/usr/bin/env bash
# Device call BY (one H100): target 5's start-up and compilation. The imports' tree on the fresh machine (the first
# process to import torch), where the start-up goes from the CLI's entry to the loop (setup_breakdown.py), then the
# stamped 300-step cold run with train.compile_unit=model and =block on one machine (fresh inductor and Triton caches
# each): since BX the two step alike, so block's 12 s less compilation would be the arm's gain.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
L=/tmp/by; mkdir -p $L
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $L/pip.txt 2>&1
T0=$SECONDS
S=$SECONDS; python3 -X importtime -c "import torch; import gptablate.train.engine" 2> $OUT/by_importtime.txt
echo "== imports, cold: $((SECONDS-S)) s wall"; sort -t'|' -k2 -n -r $OUT/by_importtime.txt | head -14 | cut -c1-120
S=$SECONDS; python3 -c "import torch; import gptablate.train.engine"; echo "== imports again: $((SECONDS-S)) s wall"
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $L/prep.txt 2>&1; tail -1 $L/prep.txt
timeout -k 5 120 python3 scripts/device/setup_breakdown.py gpt2_124m --set data.dataset=pysrc --set train.compile=false \
  --set data.eval_tokens=65536 > $OUT/by_setup.txt 2>&1
echo "== setup rc=$? [t=$((SECONDS-T0))s]"
grep "^====" $OUT/by_setup.txt
grep -E "engine.py|gpt.py|metrics.py|recipe.py|launch.py|store.py|shards.py|loader.py|cuda/__init__|kernels.py|module.py.*\(to\)|init.py.*normal_|subprocess" $OUT/by_setup.txt | head -30 | cut -c1-150
for u in model block; do
  export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
  timeout -k 5 200 python3 scripts/device/stamped_run.py $OUT/by_cold_$u.txt -- python3 -m gptablate_cli train gpt2_124m \
    --set data.dataset=pysrc --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold_$u \
    --set train.compile_unit=$u
  echo "== 300-step cold $u rc=$? [t=$((SECONDS-T0))s]"
  grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/by_cold_$u.txt | cut -c1-150
  f=$(ls -t /tmp/gruns/*/metrics.jsonl | head -1)
  python3 -c 'import json,sys; rows=[*map(json.loads, open(sys.argv[1]))]; print([(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in rows if "val_s" in r or r["step"] in (10, 20, 160, 290)]); w=[61440e3 / r["tokens_per_s"] for r in rows[1:]]; print("windows ms/step: mean %.2f" % (sum(w)/len(w)), [round(x, 1) for x in w])' "$f"
done
