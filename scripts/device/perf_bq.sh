#!/usr/bin/env bash
# Device call BQ (one H100): compiling block by block (train.compile_unit, auto: block in one process). The stamped
# 300-step cold run of target 5 with it, the cold compile's phases (compile_breakdown.py, against call BP's one graph),
# and the step: bench with block and with model alternated twice in separate processes (the first with the reference).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader; nproc
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bq_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bq_prep.txt 2>&1; tail -1 $OUT/bq_prep.txt
STAMP="python3 scripts/device/stamped_run.py"
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 300 $STAMP $OUT/bq_cold.txt -- python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc \
  --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bq_cold.txt | cut -c1-170
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 200 $STAMP $OUT/bq_breakdown.txt -- python3 scripts/device/compile_breakdown.py gpt2_124m \
  --set data.dataset=pysrc --set train.max_iters=20 --set data.eval_interval=20 --set run.name=bd
echo "== breakdown cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "imports done|\] run |step (10|20)/|train exited|exit " $OUT/bq_breakdown.txt | cut -c1-140
grep -E "_compile.compile_inner|bytecode_tracing|create_aot_dispatcher|aot_trace_joint|joint_graph_passes|min_cut|fw_compiler_base|bw_compiler|compile_fx_inner|GraphLowering.run|GraphLowering.codegen|Scheduler.codegen|async_compile.wait|total" $OUT/bq_breakdown.txt | cut -c12-120 | head -20
for f in /tmp/gruns/*/metrics.jsonl; do
  python3 -c 'import json,sys; print(sys.argv[1][11:40], [(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in map(json.loads, open(sys.argv[1])) if "val_s" in r or r["step"] in (10, 20, 160, 290)])' "$f"
done
i=0
for u in block model block model; do
  i=$((i+1)); ref=""; [ $i = 1 ] && ref="--reference"
  timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 30 $ref --set train.compile_unit=$u \
    --json $OUT/bq_bench_$i.json > $OUT/bq_bench_$i.txt 2>&1
  echo "== bench $i ($u) rc=$? [t=$((SECONDS-T0))s]"; grep -A3 "^recipe" $OUT/bq_bench_$i.txt | cut -c1-200
done
timeout -k 5 120 python3 -m pytest -q tests/test_addnorm.py tests/test_compile_blocks.py -k "not a_run" > $OUT/bq_tests.txt 2>&1
echo "tests rc=$?"; tail -2 $OUT/bq_tests.txt; echo "[t=$((SECONDS-T0))s]"
