#!/usr/bin/env bash
# Device call FP (one H100): hyper_step with its tokens a program by kernel, the forward's 2 (TUNING["norm"] ((2, 16),
# ...)), against the committed code at 16 (.dev/ab/hyperstep_9cf.py, `git show 9cfda70:gptablate/model/hyperstep.py`):
# side by side at the 124M recipe's micro-batch (12,288 x 4 x 768), the new copy at 1 to 8 tokens a program too, 5
# rounds in turn; at 61,440 tokens, 3 rounds; hyper's step. Not kept: no faster (docs/performance.md); the change (TUNING's
# tokens a pair, hyperstep_bench.py writing pairs) was reverted, so this script's new copy is gone with it.
source "$(dirname "$0")/common.sh" fp
timeout -k 5 150 python3 scripts/device/hyperstep_ab.py before=.dev/ab/hyperstep_9cf.py tokens=gptablate/model/hyperstep.py \
    --shape 12288,768 --warps 2 --tokens 1,2,4,8 --rounds 5 2>&1 | grep -vi warn | grep -v "^  stages" | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/hyperstep_ab.py before=.dev/ab/hyperstep_9cf.py tokens=gptablate/model/hyperstep.py \
    --warps 2 --rounds 3 2>&1 | grep -vi warn | grep -E "rounds|^[a-z]" | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
    2>&1 | grep -vi warn | tail -3
echo "[t=$((SECONDS-T0))s]"
