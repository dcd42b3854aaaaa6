#!/usr/bin/env bash
# Device call HI (nvidia-h200-x2): the ranks' agreement on the run (an all_gather_object before the first step, new in
# commit 1090e83) and the launcher wrapper (gptablate.train.torchrun) on NCCL, which the CPU tests cannot reach (gloo).
# 1. target 3's 2-GPU row again (`bench --scaling 1,2`), the regression check of the DDP path as a whole;
# 2. two "nodes" on this host (one GPU visible to each, one c10d rendezvous): both name one run, one folder is left;
# 3. the same with train.lr different on one node: both stop with exit 2 and one line, no folder left.
source "$(dirname "$0")/common.sh" hi
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --scaling 1,2 --steps 30 > "$OUT/hi_bench.txt" 2>&1
echo "bench rc=$?"; tail -6 "$OUT/hi_bench.txt"; echo "[t=$((SECONDS-T0))s]"

src=$(python3 -c 'import email, os; print(os.path.dirname(email.__path__[0]))')  # the standard library
python3 -m gptablate_cli prepare text "$src" --glob 'email/**/*.py' --name small > "$OUT/hi_prep.txt" 2>&1
echo "prepare rc=$?"; tail -1 "$OUT/hi_prep.txt"

# two_nodes NAME ARGS_OF_NODE_1...: `train tiny` on GPU 0 and GPU 1 as two nodes; node 1 adds ARGS_OF_NODE_1.
two_nodes() {
  local name=$1 port=$((29500 + RANDOM % 1000))
  shift
  local common=(train tiny --set data.dataset=small --set train.max_iters=30 --set data.eval_interval=30
                --device cuda --nnodes 2 --rdzv-endpoint "127.0.0.1:$port")
  CUDA_VISIBLE_DEVICES=0 timeout -k 5 240 python3 -m gptablate_cli "${common[@]}" > "$OUT/hi_${name}_0.txt" 2>&1 &
  local first=$!
  CUDA_VISIBLE_DEVICES=1 timeout -k 5 240 python3 -m gptablate_cli "${common[@]}" "$@" > "$OUT/hi_${name}_1.txt" 2>&1
  local rc1=$?
  wait $first
  echo "$name: node 0 rc=$? node 1 rc=$rc1"
  for n in 0 1; do
    echo "  node $n: $(grep -c Traceback "$OUT/hi_${name}_$n.txt") tracebacks; last lines:"
    tail -2 "$OUT/hi_${name}_$n.txt" | cut -c1-220 | sed 's/^/    /'
  done
  echo "  run folders: $(find "$GPTABLATE_RUNS" -mindepth 1 -maxdepth 1 -type d | wc -l)"
  echo "[t=$((SECONDS-T0))s]"
}
rm -rf "$GPTABLATE_RUNS"
two_nodes same
python3 -m gptablate_cli compare --by run --format csv | cut -d, -f1-8
rm -rf "$GPTABLATE_RUNS"
two_nodes differ --set train.lr=0.001
