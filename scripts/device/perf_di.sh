#!/usr/bin/env bash
# Device call DI (one H100): with mhc_step's walks pipelined, its backward's product dzraw Wᵀ as FMAs again (call DB
# tried it unpipelined: no faster). The pipelined backward waits on shared memory (call DE), which the tensor cores'
# layout conversions go through. Copies in .dev/ab: the committed code (dh), the FMA backward reading dzraw's columns
# each chunk (fma2) and holding them (fma3, swept). At 124M's and 1.5B's streams.
source "$(dirname "$0")/common.sh" di
timeout -k 5 250 python3 scripts/device/mhcstep_ab.py dh=.dev/ab/mhc_dh.py fma2=.dev/ab/mhc_fma2.py \
    fma3=.dev/ab/mhc_fma3.py --sweep fma3 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/mhcstep_ab.py dh=.dev/ab/mhc_dh.py fma2=.dev/ab/mhc_fma2.py \
    fma3=.dev/ab/mhc_fma3.py --shape 16384,1600 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
