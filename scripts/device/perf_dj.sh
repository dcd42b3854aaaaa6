#!/usr/bin/env bash
# Device call DJ (one H100): hyper_static_step's backward with its token loop pipelined (tl.range at BWD_STAGES 2 or 3:
# compiled for sm_90 the loads go through cp.async, 36-54 LDGSTS), as mhc_step's walks were (calls DD, DE): copies in
# .dev/ab (head: before; st2, st3) and the working tree (1 stage, the same loop as before). The fastest copy is put in
# place for hyper static against the baseline; its kernel check. The experiment was not kept (docs/performance.md):
# the working tree's BWD_STAGES knob is gone, so st1 and the .dev/ab copies are what this needs.
source "$(dirname "$0")/common.sh" dj
timeout -k 5 200 python3 scripts/device/hyperstep_ab.py --static head=.dev/ab/static_head.py \
    st1=gptablate/model/hyperstatic.py st2=.dev/ab/static_st2.py st3=.dev/ab/static_st3.py 2>&1 | grep -vi warn \
    | cut -c1-240 | tee $OUT/dj_ab.txt
echo "[t=$((SECONDS-T0))s]"
best=$(python3 - <<'PY'
import os, re
text = open(os.path.join(os.environ["OUT"], "dj_ab.txt")).read()
times = {m.group(1): float(m.group(2)) for m in re.finditer(
    r"^(\w+) \(.*?\n(?:  forward.*\n)*  backward at BWD_NORM .*?: ([0-9.]+) ms", text, flags=re.M)}
print(min(times, key=times.get) if times else "st1")
PY
)
echo "fastest backward: $best"
case $best in st2|st3) cp .dev/ab/static_$best.py gptablate/model/hyperstatic.py ;; esac
grep -n "^BWD_STAGES" gptablate/model/hyperstatic.py
timeout -k 5 150 python3 tests/hyperstatic_kernel_check.py 2>&1 | tail -1 | cut -c1-200
timeout -k 5 $((590 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
    --variant residual=hyper-static --json $OUT/dj_bench.json > $OUT/dj_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/dj_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
