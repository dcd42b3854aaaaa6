#!/usr/bin/env bash
# Device call BZ (one fresh H100): the session's code with its new defaults (logging without a drain, compile_unit
# auto = by block on one process). Whether this machine's Python caches bytecode (the imports took 10-11 s to the
# CLI's entry in BY, cold and warm alike), target 5's stamped 300-step cold run with the default, target 1 twice,
# and the engine's loop profiled once more.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
L=/tmp/bz; mkdir -p $L
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $L/pip.txt 2>&1
T0=$SECONDS
python3 - <<'PY'
import os, sympy, sys, torch
d = os.path.join(os.path.dirname(sympy.__file__), "core", "__pycache__")
print("python", sys.version.split()[0], "| sympy core __pycache__:", len(os.listdir(d)) if os.path.isdir(d) else "none",
      "| site-packages writable:", os.access(os.path.dirname(os.path.dirname(sympy.__file__)), os.W_OK),
      "| PYTHONDONTWRITEBYTECODE:", os.environ.get("PYTHONDONTWRITEBYTECODE"), "| dont_write_bytecode:", sys.dont_write_bytecode)
PY
for i in 1 2; do
  TIMEFORMAT="imports $i: %R s"; time python3 -c "import torch; import gptablate.train.engine"
done
for i in 1 2; do
  TIMEFORMAT="imports with PYTHONPYCACHEPREFIX $i: %R s"; time PYTHONPYCACHEPREFIX=/tmp/pyc python3 -c "import torch; import gptablate.train.engine"
done
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $L/prep.txt 2>&1; tail -1 $L/prep.txt
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 200 python3 scripts/device/stamped_run.py $OUT/bz_cold.txt -- python3 -m gptablate_cli train gpt2_124m \
  --set data.dataset=pysrc --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bz_cold.txt | cut -c1-150
f=$(ls -t /tmp/gruns/*/metrics.jsonl | head -1)
python3 -c 'import json,sys; rows=[*map(json.loads, open(sys.argv[1]))]; print([(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in rows if "val_s" in r or r["step"] in (10, 20, 160, 290)]); w=[61440e3 / r["tokens_per_s"] for r in rows[1:]]; print("windows ms/step: mean %.2f" % (sum(w)/len(w)), [round(x, 1) for x in w])' "$f"
unset TORCHINDUCTOR_CACHE_DIR TRITON_CACHE_DIR
for i in 1 2; do
  timeout -k 5 120 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/bz_bench_$i.json > $L/bench_$i.txt 2>&1
  echo "== bench $i rc=$? [t=$((SECONDS-T0))s]"; grep -A2 "^recipe" $L/bench_$i.txt | tail -2 | cut -c1-175
done
timeout -k 5 120 python3 scripts/device/engine_profile.py > $L/profile.txt 2>&1
echo "== profile rc=$? [t=$((SECONDS-T0))s]"; sed -n '/^====/,$p' $L/profile.txt | grep -v "^\s*$" | head -8 | cut -c1-170
cp $L/profile.txt $OUT/bz_profile.txt
