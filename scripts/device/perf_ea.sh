#!/usr/bin/env bash
# Device call EA (one H100): the held aggregation backward back to returning its gradients (DZ: written into tensors
# it was given, attnres block's step took 141.87 ms where the code before took 135.06), the many one still writing
# into its own: attnres's and attnres full's steps against the baseline in the same process.
source "$(dirname "$0")/common.sh" ea
timeout -k 5 $((330 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres --variant residual=attnres-full --json $OUT/ea_bench.json > $OUT/ea_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -4 $OUT/ea_bench.txt | cut -c1-230
