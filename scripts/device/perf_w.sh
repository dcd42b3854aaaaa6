#!/usr/bin/env bash
# Device call W (one H100): the fused Pre-LN walk against the plain layers in training, same machine, seed and
# data: two 300-step runs of the 124M recipe on the Python-source corpus (validation at 150 and 300).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/w_pip.txt 2>&1
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/w_prep.txt 2>&1; tail -1 $OUT/w_prep.txt
for k in fused torch; do
  timeout -k 5 200 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set train.max_iters=300 \
    --set data.eval_interval=150 --set train.norm_kernel=$k --set run.name=$k > $OUT/w_$k.txt 2>&1
  grep -E "finished:" $OUT/w_$k.txt | cut -c1-160
done
python3 - <<'PY'
import json, glob, os
for path in sorted(glob.glob("/tmp/gruns/*/metrics.jsonl")):
    name = open(os.path.join(os.path.dirname(path), "recipe.yaml")).read().split("name: ")[1].split()[0]
    rows = [json.loads(l) for l in open(path)]
    print(name, [(r["step"], round(r["train_loss"], 4)) for r in rows if r["step"] in (10, 50, 100, 200, 300)],
          [(r["step"], round(r["val_loss"], 4)) for r in rows if "val_loss" in r])
PY
