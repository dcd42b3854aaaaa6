#!/usr/bin/env bash
# Device call FQ (one H100): mhc trained 100 steps on real tokens with mhc_step's kernels (the read as a kernel of its
# own, the backward's dot products reduced once a walk; arch.mhc.kernel=fused) and with the per-site code (torch), same
# seed and data; the forward's sum of squares added up element-wise and reduced once (.dev/ab/mhcstep_ss.py, a copy of
# 9cfda70's mhcstep.py with that change) against the committed code, 5 rounds side by side.
source "$(dirname "$0")/common.sh" fq
timeout -k 5 120 python3 scripts/device/mhcstep_ab.py c=gptablate/model/mhcstep.py ss=.dev/ab/mhcstep_ss.py --rounds 5 \
    2>&1 | grep -vi warn | grep -E "rounds|^[a-z]" | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
SRC=$(python3 -c 'import sys; print(sys.prefix)')/lib
python3 -m gptablate_cli prepare text "$SRC" --glob '*.py' --name pysrc > $OUT/fq_prep.txt 2>&1; tail -1 $OUT/fq_prep.txt
echo "[t=$((SECONDS-T0))s]"
for k in fused torch; do
  timeout -k 5 220 python3 -m gptablate_cli train gpt2_124m --set data.dataset=pysrc --set arch.residual=mhc \
    --set train.max_iters=100 --set data.eval_interval=100 --set data.eval_tokens=1048576 \
    --set arch.mhc.kernel=$k --set run.name=mhc_$k > $OUT/fq_$k.txt 2>&1
  echo "$k rc=$?"
  grep -E "^step (10|50|90|100)/" $OUT/fq_$k.txt | cut -c1-120; grep -E "^finished" $OUT/fq_$k.txt | cut -c1-110
  echo "[t=$((SECONDS-T0))s]"
done
