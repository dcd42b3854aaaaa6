#!/usr/bin/env bash
# Device call D (one GPU): the fused head + loss kernel against the plain loss and the reference,
# inductor's coordinate-descent tuning, hyper static's current form.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
b() { timeout "$1" python3 -m gptablate_cli bench "${@:2}" 2>&1 | tee -a $OUT/d_all.txt | grep -v "^\s*$" | tail -4; echo "  [t=$((SECONDS-T0))s]"; }
echo "== GPU test of the kernel"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_loss.py -k triton 2>&1 | tee -a $OUT/d_all.txt | tail -3
echo "== 124M, fused loss (auto), with the reference"; b 200 gpt2_124m --steps 20 --reference --json $OUT/d_fused.json
echo "== 124M, plain loss"; b 120 gpt2_124m --steps 20 --set train.loss_kernel=torch --json $OUT/d_plain.json
echo "== hyper static (4 layers, micro 16)"
b 150 gpt2_124m --all-variants --variant residual=hyper-static --steps 10 --set model.n_layer=4 --set train.batch_size=16 --set train.micro_batch=16 --json $OUT/d_hs.json
echo "== 124M, fused, coordinate-descent tuning"
TORCHINDUCTOR_COORDINATE_DESCENT_TUNING=1 b 180 gpt2_124m --steps 20 --json $OUT/d_cdt.json
