#!/usr/bin/env bash
# Device call HH (one H100, HF's machine): HG ran 3 tests in 570 s; test_addnorm's CPU tests one by one, with a
# stack dump of any test that runs past 40 s.
source "$(dirname "$0")/common.sh" hh
gpu_tests 200 -v -x -o faulthandler_timeout=40 tests/test_addnorm.py -k "not gpu and not interpreter"
grep -E "PASSED|FAILED|ERROR|passed|failed|Timeout|File \"/" "$OUT/hh_tests.txt" | cut -c1-200 | head -60
