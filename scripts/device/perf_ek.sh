#!/usr/bin/env bash
# Device call EK (one H100): attnres full's folded norms (commit 076251e) and its stack's dtype (5305113).
# (1) the GPU kernel check (with the folded norms' kernels); (2) aggregate_bench.py --norm 25 --write-best (the norm
# backward's sweep, written for the rest of the call); (3) attnres full's step, folded; (4) the same step with the
# stack's dtype fix alone: copies carried in .dev/ab (git show 5305113:gptablate/model/aggregate.py and residuals.py)
# put in place; (5) stream_probe.py with what time is left.
source "$(dirname "$0")/common.sh" ek
timeout -k 5 120 python3 tests/aggregate_kernel_check.py > $OUT/ek_check.txt 2>&1; echo "check rc=$?  [t=$((SECONDS-T0))s]"
tail -2 $OUT/ek_check.txt | cut -c1-300
cd scripts/device && timeout -k 5 120 python3 aggregate_bench.py --norm 25 --write-best > $OUT/ek_norm.txt 2>&1
echo "norm rc=$?  [t=$((SECONDS-T0))s]"; cd ../..; cut -c1-170 $OUT/ek_norm.txt
timeout -k 5 170 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=attnres-full \
    --json $OUT/ek_folded.json > $OUT/ek_folded.txt 2>&1
echo "bench folded rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/ek_folded.txt | cut -c1-230
cp .dev/ab/aggregate_dtype.py gptablate/model/aggregate.py; cp .dev/ab/residuals_dtype.py gptablate/model/residuals.py
timeout -k 5 170 gptablate bench gpt2_124m --steps 12 --all-variants --variant residual=attnres-full \
    --json $OUT/ek_dtype.json > $OUT/ek_dtype.txt 2>&1
echo "bench dtype rc=$?  [t=$((SECONDS-T0))s]"; tail -3 $OUT/ek_dtype.txt | cut -c1-230
git checkout -q gptablate/model/aggregate.py gptablate/model/residuals.py 2>/dev/null
cd scripts/device && timeout -k 5 $((585 - SECONDS + T0)) python3 stream_probe.py > $OUT/ek_stream.txt 2>&1
echo "stream rc=$?  [t=$((SECONDS-T0))s]"; cut -c1-140 $OUT/ek_stream.txt | head -130
