#!/usr/bin/env bash
# Device call CZ (one H100): the committed hyper_step at 8 warps as well as 4 (the backward's layout changed with its
# narrowed rows since the last warps sweep); the fastest written into TUNING; the step with it.
source "$(dirname "$0")/common.sh" cz
timeout -k 5 200 python3 scripts/device/hyperstep_ab.py committed=gptablate/model/hyperstep.py --eight-warps \
    --write-best committed 2>&1 | grep -vi warn | cut -c1-240
grep -n '"norm": (\|^STAGES' gptablate/model/hyperstep.py
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 200 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper 2>&1 | tail -2 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
