#!/usr/bin/env bash
# Device call FB (one H100): hyper_step's parts with the warps past 768 features per kernel (hyperstep.PARTS: the
# forward at most 4 parts, 4 warps at 1,600; the backward 2, 8 warps), against the code before at 1.5B's streams
# (16,384 x 4 x 1,600) and 345M's (30,720 x 4 x 1,024); then 12 of 1.5B's layers.
source "$(dirname "$0")/common.sh" fb
for shape in 16384,1600 30720,1024; do
  timeout -k 5 100 python3 scripts/device/hyperstep_ab.py head=.dev/ab/hyperstep_head.py \
      parts=gptablate/model/hyperstep.py --warps 2 --shape $shape 2>&1 | grep -vi warn | cut -c1-240
  echo "[t=$((SECONDS-T0))s]"
done
timeout -k 5 $((585 - SECONDS + T0)) gptablate bench gpt2_1.5b --steps 8 --all-variants --variant residual=hyper \
    --set model.n_layer=12 --set train.batch_size=16 2>&1 | tail -2 | cut -c1-200
echo "[t=$((SECONDS-T0))s]"
