#!/usr/bin/env bash
# Device call EQ (one H100): (1) attnres full's 124M step with and without the memo of the many kernels' offset tables,
# alternated in one process after the baseline (table_ab.py; its step ran 4.7-5.3 ms longer than its kernels in EM and
# EN, unexplained); (2) the engine's step of attnres full profiled with the host (engine_profile.py): its idle GPU and
# the host's longest calls.
source "$(dirname "$0")/common.sh" eq
timeout -k 5 360 python3 scripts/device/table_ab.py --steps 30 --rounds 2 > $OUT/eq_ab.txt 2>&1
echo "ab rc=$?  [t=$((SECONDS-T0))s]"; grep -v "^\[\|^ *$" $OUT/eq_ab.txt | grep "baseline\|{\|memo" | cut -c1-250
timeout -k 5 $((570 - SECONDS + T0)) python3 scripts/device/engine_profile.py gpt2_124m \
    --set arch.residual=attnres --set arch.attnres.mode=full > $OUT/eq_profile.txt 2>&1
echo "profile rc=$?  [t=$((SECONDS-T0))s]"; sed -n '/====/,$p' $OUT/eq_profile.txt | cut -c1-200 | head -40
