#!/usr/bin/env bash
# Device call DH (one H100): mhc_step's TUNING by width (1.5B's 1,600 features its own shapes, from call DG's sweep),
# against the code before the pipelined walks (.dev/ab/mhc_dc.py), twice at 1.5B's streams and once at 124M's; the
# kernel check (its 1,600-wide case takes the new entry).
source "$(dirname "$0")/common.sh" dh
for shape in 16384,1600 16384,1600 61440,768; do
  timeout -k 5 150 python3 scripts/device/mhcstep_ab.py before=.dev/ab/mhc_dc.py committed=gptablate/model/mhcstep.py \
      --shape $shape 2>&1 | grep -vi warn | cut -c1-240
  echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 150 python3 tests/mhcstep_kernel_check.py 2>&1 | tail -1 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
