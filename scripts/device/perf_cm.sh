#!/usr/bin/env bash
# Device call CM (one H100), right after CL: `perf_cm.sh "(tokens, (warps, maxnreg), (warps, maxnreg))"` sets TUNING's
# "norm" case to CL's sweep result first. Then: 100 training steps of hyper (dynamic) on real tokens with the fold
# (arch.hyper.kernel=fused, fused_kernels on) and per-site (torch); bench hyper against the baseline with the code before
# the fold (hyperstep.py and residuals.py of commit bcd57ee, carried in .dev/before); the profile of hyper's step with
# the fold, if time is left.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
if [ -n "${1:-}" ]; then
  python3 - "$1" <<'PY'
import re, sys
from pathlib import Path
p = Path("gptablate/model/hyperstep.py")
t, done = re.subn(r'^    "norm": \(.*\),', f'    "norm": {sys.argv[1]},', p.read_text(), flags=re.M)
assert done == 1
p.write_text(t)
PY
fi
grep -n '"norm":' gptablate/model/hyperstep.py
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/cm_pip.txt 2>&1
T0=$SECONDS
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/cm_prep.txt 2>&1; tail -1 $OUT/cm_prep.txt
for k in fused torch; do
  timeout -k 5 150 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=hyper \
    --set train.max_iters=100 --set data.eval_interval=100 --set data.eval_tokens=1048576 \
    --set arch.hyper.kernel=$k --set run.name=dyn_$k > $OUT/cm_$k.txt 2>&1
  echo "$k rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/cm_$k.txt | cut -c1-120; grep -E "^finished" $OUT/cm_$k.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
cp gptablate/model/hyperstep.py gptablate/model/residuals.py /tmp/
cp .dev/before/hyperstep.py .dev/before/residuals.py gptablate/model/
timeout -k 5 230 python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
  --variant residual=hyper --json $OUT/cm_bench_before.json > $OUT/cm_bench_before.txt 2>&1; echo "bench (before) rc=$?"
tail -4 $OUT/cm_bench_before.txt; echo "[t=$((SECONDS-T0))s]"
cp /tmp/hyperstep.py /tmp/residuals.py gptablate/model/
timeout -k 5 $((585 - SECONDS + T0)) python3 scripts/profile_step.py --layers 12 --micro 60 --top 25 \
  --csv $OUT/cm_kernels.csv "arch.residual=hyper" > $OUT/cm_profile.txt 2>&1; echo "profile rc=$?"
tail -32 $OUT/cm_profile.txt | cut -c1-160; echo "[t=$((SECONDS-T0))s]"
