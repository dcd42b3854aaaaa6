#!/usr/bin/env bash
# Device call BP (one H100): where the arm's cold compilation goes (compile_breakdown.py: dynamo's phases and our
# own Triton kernels' JIT time, cold then warm), then the stamped 300-step cold run of target 5 after the CLI's lazy
# imports and the frozen heap at exit.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader; nproc
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bp_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/bp_prep.txt 2>&1; tail -1 $OUT/bp_prep.txt
STAMP="python3 scripts/device/stamped_run.py"
SHORT="gpt2_124m --set data.dataset=pysrc --set train.max_iters=20 --set data.eval_interval=20"
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
for k in cold warm; do
  timeout -k 5 200 $STAMP $OUT/bp_breakdown_$k.txt -- python3 scripts/device/compile_breakdown.py $SHORT --set run.name=bd_$k
  echo "== breakdown $k rc=$? [t=$((SECONDS-T0))s]"
  grep -E "imports done|\] run |step (10|20)/|finished|train exited|exit " $OUT/bp_breakdown_$k.txt | cut -c1-140
  grep -E "_compile.compile_inner|bytecode_tracing|create_aot_dispatcher|aot_trace_joint|joint_graph_passes|min_cut|fw_compiler_base|bw_compiler|compile_fx_inner|GraphLowering.run|GraphLowering.codegen|Scheduler.__init__|Scheduler.codegen|load_by_key_path|async_compile.wait|build_guards|, gc|total|  [a-z_]+ +[0-9]+ +[0-9.]+$" $OUT/bp_breakdown_$k.txt | cut -c12-120 | head -40
done
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d)
timeout -k 5 300 $STAMP $OUT/bp_cold.txt -- python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc \
  --set train.max_iters=300 --set data.eval_interval=150 --set run.name=cold
echo "== 300-step cold rc=$? [t=$((SECONDS-T0))s]"
grep -E "\] (# resolved|run |model:|matmul|step (10|20|150|160|290|300)/|finished|exit)" $OUT/bp_cold.txt | cut -c1-150
for f in /tmp/gruns/*/metrics.jsonl; do
  python3 -c 'import json,sys; print(sys.argv[1][11:40], [(r["step"], round(r["elapsed_s"], 2), round(r.get("val_s", 0), 2)) for r in map(json.loads, open(sys.argv[1])) if "val_s" in r or r["step"] in (10, 20, 160, 290)])' "$f"
done
echo "[t=$((SECONDS-T0))s]"
