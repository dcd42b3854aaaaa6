#!/usr/bin/env bash
# Device call FQ (one H100): mhc trained 100 steps on real tokens with mhc_step's kernels (the read as a kernel of its
# own, the backward's dot products reduced once a walk; arch.mhc.kernel=fused) and with the per-site code (torch), same
# seed and data; the forward's sum of squares added up element-wise and reduced once (.dev/ab/mhcstep_ss.py, a copy of
# 9cfda70's mhcstep.py with that change) against the committed code, 5 rounds side by side.
source "$(dirname "$0")/common.sh" fq
timeout -k 5 120 python3 scripts/device/mhcstep_ab.py c=gptablate/model/mhcstep.py ss=.dev/ab/mhcstep_ss.py --rounds 5 \
    2>&1 | grep -vi warn | grep -E "rounds|^[a-z]" | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
kernels_against_torch mhc 220
