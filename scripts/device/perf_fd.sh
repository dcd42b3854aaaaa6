#!/usr/bin/env bash
# Device call FD (one H100): hyper_step with its masks as constants where the streams and the row fill their tiles
# (hyperstep.py's EVEN; compiled for sm_90, forward 2,544 -> 2,336 instructions, backward 3,648 -> 3,392), against
# the code before it (.dev/ab/hyperstep_fc.py, `git show 323ba7d:gptablate/model/hyperstep.py`) at the 124M step's
# streams, the fastest shapes written into TUNING; then hyper's step at 124M.
source "$(dirname "$0")/common.sh" fd
timeout -k 5 330 python3 scripts/device/hyperstep_ab.py fc=.dev/ab/hyperstep_fc.py even=gptablate/model/hyperstep.py \
    --warps 2 --write-best even 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"; grep -n "^TUNING\|^    True\|^    \"norm\"\|^STAGES" gptablate/model/hyperstep.py
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
    2>&1 | grep -vi warn | tail -8
echo "[t=$((SECONDS-T0))s]"
