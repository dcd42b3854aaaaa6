#!/usr/bin/env bash
# Device call FT (one H100, FS's lease): the Sinkhorn kernels with the stored rounds at 64 (committed), 32 and 16 tokens
# a program (.dev/ab/sinkhorn_b32.py, _b16.py: the working file with TOKENS_PER_PROGRAM changed by sed).
source "$(dirname "$0")/common.sh" ft
timeout -k 5 150 python3 scripts/device/sinkhorn_bench.py b64=gptablate/model/sinkhorn.py b32=.dev/ab/sinkhorn_b32.py \
    b16=.dev/ab/sinkhorn_b16.py 2>&1 | grep -vi warn | grep rounds | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
