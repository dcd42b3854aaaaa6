#!/usr/bin/env bash
# Device call DD (one H100): mhc_step's walks over the features as tl.range loops pipelined at the kernels' stages
# (call DC's counters: 12.5% occupancy, and the backward's warps waiting on memory 5.8 of every 10.3 cycles; its
# stream loads had not been pipelined, only W's rows for the tensor cores): compiled for sm_90 at 2-3 stages the
# backward's loads go through cp.async (72-108 LDGSTS), barriers 94 -> 79. Against the code before (.dev/ab/mhc_dc.py),
# swept, the fastest written into TUNING; the kernel check; mhc against the baseline.
source "$(dirname "$0")/common.sh" dd
timeout -k 5 300 python3 scripts/device/mhcstep_ab.py before=.dev/ab/mhc_dc.py walks=gptablate/model/mhcstep.py \
    --sweep walks --write-best walks 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 tests/mhcstep_kernel_check.py 2>&1 | tail -1 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((590 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
    --variant residual=mhc --json $OUT/dd_bench.json > $OUT/dd_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/dd_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
grep -n "^TUNING" gptablate/model/mhcstep.py
