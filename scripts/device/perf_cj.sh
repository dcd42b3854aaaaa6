#!/usr/bin/env bash
# Device call CJ (one H100): the fold's kernel sweep again with each sweep left at its best shape (CI's ran the later
# sweeps at the earlier one's last shape; --write-best), the profile of hyper static with the fold at the real size,
# and bench hyper static against the baseline once more.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cj_pip.txt 2>&1
T0=$SECONDS
(cd scripts/device && timeout -k 5 200 python3 hyperstatic_bench.py --write-best --norm-only) > $OUT/cj_kbench.txt 2>&1
grep -E "best|a site|wrote|failed" $OUT/cj_kbench.txt | cut -c1-200; echo "[t=$((SECONDS-T0))s]"
git diff gptablate/model/hyperstatic.py | grep "^[+-][A-Z]"
timeout -k 5 200 python3 scripts/profile_step.py --layers 12 --micro 60 --top 25 --csv $OUT/cj_kernels.csv \
  "arch.residual=hyper,arch.hyper.dynamic=false" > $OUT/cj_profile.txt 2>&1; echo "profile rc=$?"
tail -32 $OUT/cj_profile.txt | cut -c1-160; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((580 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper-static --json $OUT/cj_bench.json > $OUT/cj_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/cj_bench.txt; echo "[t=$((SECONDS-T0))s]"
