#!/usr/bin/env bash
# Device call FE (one H100, FD's machine): hyper_step's row in chunks of 64 and 32 features a warp (copies of the
# committed code with DL fixed, .dev/ab/hyperstep_dl64.py and _dl32.py) at 4 and 8 warps: 768 features still 3 parts,
# none masked, half and a quarter of the registers a thread holds a part in (compiled for sm_90: the backward 255
# registers and 16 bytes of stack at 64, 182 and none at 32, against 255 and 136), more warps to a token.
source "$(dirname "$0")/common.sh" fe
timeout -k 5 250 python3 scripts/device/hyperstep_ab.py even=gptablate/model/hyperstep.py dl64=.dev/ab/hyperstep_dl64.py \
    --warps 4 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/device/hyperstep_ab.py even=gptablate/model/hyperstep.py \
    dl32=.dev/ab/hyperstep_dl32.py --warps 8 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
