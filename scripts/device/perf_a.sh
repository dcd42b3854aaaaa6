#!/usr/bin/env bash
# Device call A (one H100): baseline vs reference, SDPA kernels, the multi-stream variants.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())"
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
g() { python3 -m gptablate_cli "$@"; }
T0=$SECONDS
g bench gpt2_124m --steps 20 --reference --json $OUT/a_base.json 2>&1 | grep -v "^\s*$" | tail -4
echo "[t=$((SECONDS-T0))s]"
g bench gpt2_124m --steps 20 --set train.attention=cudnn --json $OUT/a_cudnn.json 2>&1 | tail -2
echo "[t=$((SECONDS-T0))s]"
g bench gpt2_124m --steps 20 --set train.attention=cudnn --set train.micro_batch=30 --json $OUT/a_cudnn30.json 2>&1 | tail -2
echo "[t=$((SECONDS-T0))s]"
V="--variant residual=hyper --variant residual=hyper-static --variant residual=mhc --variant residual=attnres --variant residual=attnres-full --variant residual=denseformer"
g bench gpt2_124m --all-variants $V --steps 10 --set model.n_layer=4 --set train.batch_size=16 --set train.micro_batch=16 --json $OUT/a_variants.json 2>&1 | tail -9
echo "[t=$((SECONDS-T0))s]"
