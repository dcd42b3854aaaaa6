#!/usr/bin/env bash
# Device call EC (one H100): EB's pull sweep again with inputs a model gives (scores under the log-denominators; EB's
# made p up to e^40 and no row matched), every site's backward pulled against summed site by site, then attnres
# full's step against the baseline at the swept tuning.
source "$(dirname "$0")/common.sh" ec
timeout -k 5 240 python3 scripts/device/aggregate_bench.py --pull 25 --write-best > $OUT/ec_pull.txt 2>&1
echo "pull rc=$?  [t=$((SECONDS-T0))s]"; grep -E "fastest|a step|wrote|site (0|1|8|12|20|24) " $OUT/ec_pull.txt | cut -c1-230
grep -E "matches: False" $OUT/ec_pull.txt | head -2 | cut -c1-300
grep -n "^AGG_PULL" gptablate/model/aggregate.py
timeout -k 5 $((590 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants \
    --variant residual=attnres-full --json $OUT/ec_bench.json > $OUT/ec_bench.txt 2>&1
echo "bench rc=$?  [t=$((SECONDS-T0))s]"; tail -4 $OUT/ec_bench.txt | cut -c1-230
