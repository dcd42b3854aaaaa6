#!/usr/bin/env bash
# Device call HE (one H100, HA's machine): target 1 on the machine of target 2's table, the baseline against the
# nanoGPT-style reference step.
source "$(dirname "$0")/common.sh" he
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json "$OUT/he_bench.json" \
  > "$OUT/he_bench.txt" 2>&1
echo "bench rc=$?"; tail -3 "$OUT/he_bench.txt"; echo "[t=$((SECONDS-T0))s]"
