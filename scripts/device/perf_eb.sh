#!/usr/bin/env bash
# Device call EB (one H100): attnres full's backward pulled (aggregate.py's _Pulled: each site's output gradient
# written once into a stack, each source's whole gradient formed at its lowest site from the rows above it). The
# kernel check (with the pull kernel), the pull kernel swept and every site's backward timed pulled and summed site by
# site (the carriers), then attnres full's step against the baseline in the same process at the swept tuning.
source "$(dirname "$0")/common.sh" eb
timeout -k 5 240 python3 tests/aggregate_kernel_check.py > $OUT/eb_check.txt 2>&1
echo "check rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/eb_check.txt | cut -c1-300
timeout -k 5 200 python3 scripts/device/aggregate_bench.py --pull 25 --write-best > $OUT/eb_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; grep -E "fastest|a step|wrote|site (0|1|8|12|24) " $OUT/eb_pull.txt | cut -c1-230
grep -n "^AGG_PULL" gptablate/model/aggregate.py
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --json $OUT/eb_bench.json > $OUT/eb_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -4 $OUT/eb_bench.txt | cut -c1-230
