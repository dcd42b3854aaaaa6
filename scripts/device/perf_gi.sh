#!/usr/bin/env bash
# Device call GI (one H100, GG's machine): hyper's and mHC's kernels a site at the 124M step's 61,440 tokens with fp32
# and bf16 streams (stream_dtype_bench.py, 5 rounds), after GE/GF's forward and GD's weight gradient; FW measured before.
source "$(dirname "$0")/common.sh" gi
timeout -k 5 240 python3 scripts/device/stream_dtype_bench.py 61440 --rounds 5 > "$OUT/gi_streams.txt" 2>&1
echo "rc=$?"; cat "$OUT/gi_streams.txt" | cut -c1-220
