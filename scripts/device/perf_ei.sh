#!/usr/bin/env bash
# Device call EI (one H100): (1) stream_probe.py: how fast the pull kernel's way of reading the stack can go with no
# arithmetic, with the pull's, and with u_j's rows, one token at a time (the pull's layout) and in blocks of tokens;
# (2) profile_step.py of attnres full's 12-layer step beside the baseline's: where its 38 ms over the baseline go.
source "$(dirname "$0")/common.sh" ei
cd scripts/device && timeout -k 5 260 python3 stream_probe.py > $OUT/ei_stream.txt 2>&1
echo "stream rc=$?  [t=$((SECONDS-T0))s]"; cd ../..
cut -c1-160 $OUT/ei_stream.txt
timeout -k 5 $((560 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 30 \
    --csv $OUT/ei_kernels.csv "" "arch.residual=attnres,arch.attnres.mode=full" > $OUT/ei_profile.txt 2>&1
echo "profile rc=$?  [t=$((SECONDS-T0))s]"; cut -c1-200 $OUT/ei_profile.txt | grep -v "^-" | head -120
