#!/usr/bin/env bash
# Device call GG (one H100): GF's code again on another machine: the step with bf16 streams; the model with bf16
# streams on the kernels against the fp32 model (the new GPU test); hyper with bf16 streams trained 100 steps at seeds 1
# and 2, against FX's and GA's runs (bf16 3.4543 and 3.4635, fp32 3.4445 and 3.4442 before this change).
source "$(dirname "$0")/common.sh" gg
timeout -k 5 200 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-bf16 \
  --json "$OUT/gg_bench.json" > "$OUT/gg_bench.txt" 2>&1
echo "bench rc=$?"; tail -3 "$OUT/gg_bench.txt"
echo "[t=$((SECONDS-T0))s]"
gpu_tests 150 tests/test_hyperstep.py -k "bf16 and gpu"
for seed in 1 2; do SEED=$seed trained_alike hyper stream_dtype 125 bfloat16; done
