#!/usr/bin/env bash
# Device call HJ (one H100), in place of HI while no 2-GPU machine is lent: the ranks' agreement on NCCL at one rank
# (agree_on_run's all_gather_object of the recipes through CUDA tensors, under gptablate.train.torchrun), and a
# short GPU run recording its parameter count (schema 5) that compare shows.
source "$(dirname "$0")/common.sh" hj
python3 -m gptablate.train.torchrun --standalone --nproc-per-node 1 scripts/device/agree_probe.py \
  > "$OUT/hj_probe.txt" 2>&1
echo "probe rc=$?"; tail -3 "$OUT/hj_probe.txt"
src=$(python3 -c 'import email, os; print(os.path.dirname(email.__path__[0]))')  # the standard library
python3 -m gptablate_cli prepare text "$src" --glob 'email/**/*.py' --name small > "$OUT/hj_prep.txt" 2>&1
echo "prepare rc=$?"; tail -1 "$OUT/hj_prep.txt"
timeout -k 5 300 python3 -m gptablate_cli train tiny --set data.dataset=small --set train.max_iters=30 \
  --set data.eval_interval=30 --set arch.residual=hyper > "$OUT/hj_train.txt" 2>&1
echo "train rc=$?"; tail -2 "$OUT/hj_train.txt" | cut -c1-200; grep -E "^model:" "$OUT/hj_train.txt" | cut -c1-100
python3 -m gptablate_cli compare --format markdown | head -3
echo "[t=$((SECONDS-T0))s]"
