#!/usr/bin/env bash
# Device call DO (one H100): at 1.5B's width, attnres's aggregations as their one operation and Hyper-Connections'
# sites' norms folded into their steps (GPT.fused_kernels now takes them at any width: FUSED_WIDTH), in the step as
# calls DL and DM measured them without (12 of 1.5B's layers, a micro-step of 16 sequences); the static steps' kernel
# check (its 1,600-wide case folds the norm).
source "$(dirname "$0")/common.sh" do
timeout -k 5 120 python3 tests/hyperstatic_kernel_check.py 2>&1 | tail -1 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((560 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 8 --all-variants --variant residual=attnres \
    --variant residual=hyper --variant residual=hyper-static --set model.n_layer=12 --set train.batch_size=16 \
    --json $OUT/do_bench.json > $OUT/do_bench.txt 2>&1
echo "bench rc=$?"; tail -5 $OUT/do_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
