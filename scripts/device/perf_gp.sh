#!/usr/bin/env bash
# Device call GP (one H100): GO again with bf16 streams only and longer limits (GO's benches ran past 200 s each on a
# cold machine: 345M's baseline and hyper finished, hyper-bf16 did not): 345M's and 1.5B's widths, 12 of their layers.
source "$(dirname "$0")/common.sh" gp
for spec in "gpt2_345m 30" "gpt2_1.5b 16"; do
  set -- $spec
  timeout -k 5 280 python3 -m gptablate_cli bench $1 --steps 8 --all-variants --variant residual=hyper-bf16 \
    --set model.n_layer=12 --set train.batch_size=$2 --json "$OUT/gp_$1.json" > "$OUT/gp_$1.txt" 2>&1
  echo "bench $1 rc=$?"; tail -3 "$OUT/gp_$1.txt" | cut -c1-240; echo "[t=$((SECONDS-T0))s]"
done
