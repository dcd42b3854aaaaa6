#!/usr/bin/env bash
# Device call DG (one H100): mhc_step's pipelined kernels (calls DD, DE: tuned at the 124M width) at 345M's width (1,024
# features, 30,720 tokens) and 1.5B's (1,600, 16,384), against the code before (.dev/ab/mhc_dc.py), with a sweep of
# the committed code at each (nothing written); aggregate's GPU check on the committed code (in DF it did not finish
# within 100 s on the experiment's).
source "$(dirname "$0")/common.sh" dg
for shape in 30720,1024 16384,1600; do
  timeout -k 5 200 python3 scripts/device/mhcstep_ab.py before=.dev/ab/mhc_dc.py committed=gptablate/model/mhcstep.py \
      --sweep committed --shape $shape 2>&1 | grep -vi warn | cut -c1-240
  echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 300 python3 tests/aggregate_kernel_check.py > $OUT/dg_agg.txt 2>&1; echo "aggregate check rc=$?"
tail -1 $OUT/dg_agg.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
