#!/usr/bin/env bash
# Device call CP (one H100): hyper_step's backward with the site's norm taking its two row sums in the same reduction
# across the warps as each stream's Σ H'_i·dx (one such reduction a token, not two in turn): the hyper tests on a GPU,
# the fold's sweep (--norm-only --write-best), bench hyper against the baseline, and hyper's step profiled with TF32 on
# as the engine has it (profile_step.py now sets it).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cp_pip.txt 2>&1
python3 -m pip install -q pytest > /dev/null 2>&1
T0=$SECONDS
timeout -k 5 200 python3 -m pytest -q tests/test_hyperstep.py --tb=short > $OUT/cp_tests.txt 2>&1
tail -2 $OUT/cp_tests.txt; grep -E "^E  " $OUT/cp_tests.txt | cut -c1-300 | head -8; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/device/hyperstep_bench.py --norm-only --write-best > $OUT/cp_kbench.txt 2>&1
echo "kbench rc=$?"; grep -E "site|best|matmul|wrote|failed" $OUT/cp_kbench.txt | cut -c1-220; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 250 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants --variant residual=hyper \
  --json $OUT/cp_bench.json > $OUT/cp_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/cp_bench.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 12 \
  --csv $OUT/cp_kernels.csv "arch.residual=hyper" > $OUT/cp_profile.txt 2>&1; echo "profile rc=$?"
grep -E "====" $OUT/cp_profile.txt | cut -c1-200
awk -F, '$2==24 || $2==48' $OUT/cp_kernels.csv | sort -t, -k3 -gr | head -6 | cut -c1-160; echo "[t=$((SECONDS-T0))s]"
