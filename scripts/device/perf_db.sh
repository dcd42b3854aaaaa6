#!/usr/bin/env bash
# Device call DB (one H100): mhc_step's backward without the tensor cores in its second walk (dzraw Wᵀ as FMAs from
# dzraw's columns and Wᵀ's rows) and with its 2-byte rows narrowed: compiled for sm_90, 94 -> 47 barriers and no tile
# moved between layouts inside its loops (43 layout conversions before). Copies in .dev/ab: the code before (head), only
# the narrowing (narrow: forward and backward, tensor cores kept), the working tree's code (fma), and it with the forward
# narrowed too (fma_nf). The kernel check; then mhc against the baseline.
source "$(dirname "$0")/common.sh" db
timeout -k 5 150 python3 tests/mhcstep_kernel_check.py 2>&1 | tail -2
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 scripts/device/mhcstep_ab.py head=.dev/ab/mhc_head.py narrow=.dev/ab/mhc_narrow.py \
    fma=gptablate/model/mhcstep.py fma_nf=.dev/ab/mhc_fma_nf.py --sweep fma --write-best fma 2>&1 \
    | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((590 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
    --variant residual=mhc --json $OUT/db_bench.json > $OUT/db_bench.txt 2>&1; echo "bench rc=$?"
tail -4 $OUT/db_bench.txt; echo "[t=$((SECONDS-T0))s]"
git diff --stat gptablate/model/mhcstep.py; grep -n "^TUNING" gptablate/model/mhcstep.py
