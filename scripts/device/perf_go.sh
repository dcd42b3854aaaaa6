#!/usr/bin/env bash
# Device call GO (one H100, GM's machine): hyper with fp32 and bf16 streams at 345M's and 1.5B's widths, 12 of their
# layers at their micro-batches, as calls DP and DL measured them (GL's backward).
source "$(dirname "$0")/common.sh" go
for spec in "gpt2_345m 30" "gpt2_1.5b 16"; do
  set -- $spec
  timeout -k 5 200 python3 -m gptablate_cli bench $1 --steps 8 --all-variants --variant residual=hyper \
    --variant residual=hyper-bf16 --set model.n_layer=12 --set train.batch_size=$2 --json "$OUT/go_$1.json" \
    > "$OUT/go_$1.txt" 2>&1
  echo "bench $1 rc=$?"; tail -4 "$OUT/go_$1.txt" | cut -c1-240; echo "[t=$((SECONDS-T0))s]"
done
