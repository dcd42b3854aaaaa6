# Sourced by the device scripts from perf_db.sh on, with the call's tag: `source "$(dirname "$0")/common.sh" db`.
# Strict pipes, unbuffered Python, the GPT-2 ranks carried with the call (.dev/gpt2.tiktoken), data and runs under /tmp,
# the GPU's name and (from call HA on) the versions of torch, CUDA and Triton, the checkout installed without its
# dependencies (the machine has torch; pip's log in $OUT/TAG_pip.txt), T0 for the scripts' elapsed-time marks and TAG;
# gpu_tests, a pytest run on the GPU; hyperstep_against and bench_variants, hyper_step's kernels against an earlier copy
# and the step; prepare_pysrc and trained_steps, training runs on the standard library's sources; and trained_alike,
# short training runs of a variant under several values of one of its settings (kernels_against_torch: its kernels
# against its per-site code).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata \
    GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c 'import torch, triton
print("torch", torch.__version__, "CUDA", torch.version.cuda, "triton", triton.__version__)'
python3 -m pip install --no-deps --no-build-isolation -q -e . > "$OUT/${1}_pip.txt" 2>&1
T0=$SECONDS
TAG=$1

# gpu_tests SECONDS PYTEST_ARGS...: pytest (installed first) on the GPU with PYTEST_ARGS, under SECONDS; the log in
# $OUT/TAG_tests.txt, its last line and first errors printed.
gpu_tests() {
  local limit=$1
  shift
  python3 -m pip install -q pytest > /dev/null 2>&1
  timeout -k 5 "$limit" python3 -m pytest -q --tb=short "$@" > "$OUT/${TAG}_tests.txt" 2>&1
  tail -1 "$OUT/${TAG}_tests.txt"; grep -E "^E  " "$OUT/${TAG}_tests.txt" | cut -c1-300 | head -6
  echo "[t=$((SECONDS-T0))s]"
}

# hyperstep_against BEFORE SECONDS STREAMS...: hyperstep_ab.py, the kernels of BEFORE (a copy of hyperstep.py carried
# under .dev/ab) side by side with the checkout's, at 2 warps and 5 rounds, for each STREAMS (fp32, bf16), each under
# SECONDS; logs in $OUT/TAG_ab_STREAMS.txt, the comparison's lines printed.
hyperstep_against() {
  local before=$1 limit=$2 st
  shift 2
  for st in "$@"; do
    timeout -k 5 "$limit" python3 scripts/device/hyperstep_ab.py before="$before" \
      after=gptablate/model/hyperstep.py --warps 2 --rounds 5 --streams "$st" > "$OUT/${TAG}_ab_$st.txt" 2>&1
    echo "ab $st rc=$?"; grep -E "^(before|after)|best|rounds|own" "$OUT/${TAG}_ab_$st.txt" | cut -c1-200
    echo "[t=$((SECONDS-T0))s]"
  done
}

# bench_variants SECONDS VARIANT...: `bench gpt2_124m --steps 12 --all-variants` with each `--variant` VARIANT, under
# SECONDS; the table in $OUT/TAG_bench.txt and .json, each row's line (from commit f8f13ac on: rows timed before a
# timeout are kept) and the table's last lines printed.
bench_variants() {
  local limit=$1 v args=()
  shift
  for v in "$@"; do args+=(--variant "$v"); done
  timeout -k 5 "$limit" python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants "${args[@]}" \
    --json "$OUT/${TAG}_bench.json" > "$OUT/${TAG}_bench.txt" 2>&1
  echo "bench rc=$?"; grep -E "^bench row" "$OUT/${TAG}_bench.txt"; tail -4 "$OUT/${TAG}_bench.txt"
  echo "[t=$((SECONDS-T0))s]"
}

# prepare_pysrc: the Python standard library's sources prepared once as the dataset pysrc (log in $OUT/TAG_prep.txt).
prepare_pysrc() {
  local src
  if [ ! -d "$GPTABLATE_DATA/pysrc" ]; then
    src=$(python3 -c 'import sys; print(sys.prefix)')/lib
    python3 -m gptablate_cli prepare text "$src" --glob '*.py' --name pysrc > "$OUT/${TAG}_prep.txt" 2>&1
    tail -1 "$OUT/${TAG}_prep.txt"
    echo "[t=$((SECONDS-T0))s]"
  fi
}

# trained_steps STEPS NAME SECONDS SETTING...: the 124M recipe trained STEPS steps on pysrc (warmup STEPS/10, validation
# on 1M tokens at the end) with each SETTING (`--set` pairs), under SECONDS; the log in $OUT/TAG_NAME.txt, its loss at
# logged steps near a third and two thirds of the way and at the end, and its final line printed. RUN (the
# environment's, optional): the command in place of `python3 -m gptablate_cli` (an instrument such as
# rounding_sides.py).
trained_steps() {
  local steps=$1 name=$2 limit=$3 log
  shift 3
  prepare_pysrc
  log="$OUT/${TAG}_$name.txt"
  # shellcheck disable=SC2086  # RUN is a command line
  timeout -k 5 "$limit" ${RUN:-python3 -m gptablate_cli} train gpt2_124m --set data.dataset=pysrc \
    --set train.max_iters="$steps" --set train.warmup_iters=$((steps / 10)) --set data.eval_interval="$steps" \
    --set data.eval_tokens=1048576 --set run.name="$name" "$@" > "$log" 2>&1
  echo "$name rc=$?"
  grep -E "^step ($((steps / 30 * 10))|$((steps / 15 * 10))|$((steps - 10))|$steps)/" "$log" | cut -c1-120
  grep -E "^finished" "$log" | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
}

# trained_alike VARIANT KEY SECONDS VALUE...: VARIANT (hyper, mhc) trained 100 steps of the 124M recipe on real tokens
# (the Python standard library's sources, prepared once as pysrc) with each VALUE of arch.VARIANT.KEY, same seed and
# data, each run under SECONDS; logs in $OUT/TAG_prep.txt and $OUT/TAG_VARIANT_VALUE[_SEED].txt (TAG_VALUE.txt until
# call FV). SEED (the environment's, optional): train.seed for these runs, the recipe's (1) without it.
trained_alike() {
  local variant=$1 key=$2 limit=$3 v log seed=()
  shift 3
  [ -n "${SEED:-}" ] && seed=(--set "train.seed=$SEED")
  prepare_pysrc
  for v in "$@"; do
    log="$OUT/${TAG}_${variant}_$v${SEED:+_$SEED}.txt"
    timeout -k 5 "$limit" python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc \
      --set arch.residual="$variant" --set train.max_iters=100 --set data.eval_interval=100 \
      --set data.eval_tokens=1048576 --set "arch.$variant.$key=$v" --set "run.name=${variant}_$v" "${seed[@]}" \
      > "$log" 2>&1
    echo "$variant $key=$v${SEED:+ seed $SEED} rc=$?"
    grep -E "^step (10|50|90|100)/" "$log" | cut -c1-120
    grep -E "^finished" "$log" | cut -c1-110
    echo "[t=$((SECONDS-T0))s]"
  done
}

# kernels_against_torch VARIANT SECONDS: the training check of a fused variant's kernels against its per-site code
# (perf_fi.sh, perf_fq.sh)
kernels_against_torch() {
  trained_alike "$1" kernel "$2" fused torch
}
