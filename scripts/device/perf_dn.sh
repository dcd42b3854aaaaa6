#!/usr/bin/env bash
# Device call DN (one H100): where attnres's step goes at 1.5B's width (1.285x the baseline's at 12 of its layers in
# call DL, 1.167x at 124M): the step's GPU time by kind of kernel and its costliest kernels, the baseline and attnres,
# 12 layers of 1,600 features, a micro-step of 16 sequences.
source "$(dirname "$0")/common.sh" dn
timeout -k 5 400 python3 scripts/profile_step.py --layers 12 --micro 16 --top 16 "model.n_embd=1600,model.n_head=25" \
    "model.n_embd=1600,model.n_head=25,arch.residual=attnres" > $OUT/dn_profile.txt 2>&1; echo "profile rc=$?"
grep -vi warn $OUT/dn_profile.txt | cut -c1-200 | tail -80; echo "[t=$((SECONDS-T0))s]"
