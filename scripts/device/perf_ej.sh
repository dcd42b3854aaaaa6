#!/usr/bin/env bash
# Device call EJ (one H100): (1) stream_probe.py (EI's failed on its SM count); (2) inductor's generated code for
# attnres full's 12-layer step (TORCH_LOGS=output_code, one profile_step.py run): the kernels that EI's profile showed
# around the pull (the 2.4 ms pointwise kernel once a step named after aggregate_pull, and the norms' kernels).
source "$(dirname "$0")/common.sh" ej
cd scripts/device && timeout -k 5 260 python3 stream_probe.py > $OUT/ej_stream.txt 2>&1
echo "stream rc=$?  [t=$((SECONDS-T0))s]"; cd ../..
cut -c1-160 $OUT/ej_stream.txt
TORCH_LOGS=output_code timeout -k 5 $((560 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 \
    "arch.residual=attnres,arch.attnres.mode=full" > $OUT/ej_profile.txt 2> /tmp/ej_code.log
echo "profile rc=$?  [t=$((SECONDS-T0))s]"; grep "====" -A4 $OUT/ej_profile.txt
python3 scripts/device/code_excerpt.py /tmp/ej_code.log aggregate_pull native_layer_norm_view native_layer_norm_backward \
    red_fused_sum > $OUT/ej_code.txt; wc -l $OUT/ej_code.txt /tmp/ej_code.log
