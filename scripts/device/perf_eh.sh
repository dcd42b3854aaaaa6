#!/usr/bin/env bash
# Device call EH (one H100): the pull kernel's u_j rows loaded through L1 (cache_modifier ".ca": cp.async.ca where the
# pipeliner had them bypass L1, so that U, 77 KB at 124M, is read from L2 once per token and site). Copies carried:
# .dev/ab/aggregate_bypass.py (the committed aggregate.py) and .dev/ab/aggregate_ca.py (the same with the one load's
# modifier). pull_ab.py times them side by side; then the candidate is put in place on this machine and attnres
# full's step is timed with it.
source "$(dirname "$0")/common.sh" eh
cd scripts/device && timeout -k 5 120 python3 pull_ab.py bypass=../../.dev/ab/aggregate_bypass.py \
    ca=../../.dev/ab/aggregate_ca.py > $OUT/eh_ab.txt 2>&1; echo "ab rc=$?  [t=$((SECONDS-T0))s]"; cd ../..
cut -c1-150 $OUT/eh_ab.txt
cp .dev/ab/aggregate_ca.py gptablate/model/aggregate.py
timeout -k 5 $((300 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --json $OUT/eh_bench.json > $OUT/eh_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/eh_bench.txt | cut -c1-230
