#!/usr/bin/env bash
# Device call HG (one H100, HF's machine): the rest of the test suite (what CI runs on the CPU) on a machine with a GPU,
# where the commands that pick their device take CUDA; the interpreter's tests left out (their Triton is not here).
source "$(dirname "$0")/common.sh" hg
gpu_tests 570 -rs --durations=15 tests -k "not gpu and not interpreter"
grep -E "FAILED|ERROR|passed|failed|^[0-9.]+s call" "$OUT/hg_tests.txt" | cut -c1-200 | head -40
