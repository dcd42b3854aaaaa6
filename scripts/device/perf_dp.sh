#!/usr/bin/env bash
# Device call DP (one H100): the multi-stream variants at 345M's width (1,024 features: 8 chunks a row, the kernels as
# tuned), 12 of its 24 layers, its micro-batch of 30 sequences, as calls DL to DO measured 1.5B's.
source "$(dirname "$0")/common.sh" dp
timeout -k 5 $((235 - SECONDS + T0)) gptablate bench gpt2_345m --steps 8 --all-variants --variant residual=hyper \
    --variant residual=mhc --variant residual=attnres --set model.n_layer=12 --set train.batch_size=30 \
    --json $OUT/dp_bench.json > $OUT/dp_bench.txt 2>&1
echo "bench rc=$?"; tail -5 $OUT/dp_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
