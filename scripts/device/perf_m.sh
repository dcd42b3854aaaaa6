#!/usr/bin/env bash
# Device call M (one H100): the Sinkhorn kernels' GPU test; the multi-stream variants at the real size
# (12 layers, the recipe's step of 60 sequences) after the Sinkhorn op and bench's memory release; where
# hyper's extra GPU time goes (12 layers, micro-batch 30).
# Output goes to files, not through a pipe: inductor's compile workers inherit a pipe and keep it open
# (call L hung on `| tee` for its whole 600 s).
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/m_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 -m pytest -q tests/test_sinkhorn.py > $OUT/m_test.txt 2>&1; tail -2 $OUT/m_test.txt
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 330 python3 -m gptablate_cli bench gpt2_124m --steps 20 --all-variants --variant residual=hyper \
  --variant residual=hyper-static --variant residual=mhc --json $OUT/m_var.json > $OUT/m_var.txt 2>&1
grep -E "^run bench|^model:|^finished" $OUT/m_var.txt | cut -c1-170; tail -9 $OUT/m_var.txt
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 scripts/profile_step.py --layers 12 --micro 30 --top 30 "arch.residual=hyper" > $OUT/m_prof.txt 2>&1
grep -A12 "^====" $OUT/m_prof.txt
echo "[t=$((SECONDS-T0))s]"
