#!/usr/bin/env bash
# Device call R (one H100, the machine of call Q, as two commands there): call Q's sweep again (perf_q.sh had
# named the script wrongly), then the static case with the tuning it found, against the baseline.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/r_pip.txt 2>&1
timeout -k 5 300 python3 scripts/device/hyperstep_bench.py --write-best > $OUT/q2_hsbench.txt 2>&1
grep -E "best|site|matmul|wrote|failed" $OUT/q2_hsbench.txt
timeout -k 5 120 python3 -m pytest -q -k "gpu" tests/test_hyperstep.py > $OUT/r_test.txt 2>&1; tail -1 $OUT/r_test.txt
timeout -k 5 300 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper-static \
  --json $OUT/r_var.json > $OUT/r_var.txt 2>&1
tail -4 $OUT/r_var.txt
