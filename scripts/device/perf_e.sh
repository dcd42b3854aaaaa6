#!/usr/bin/env bash
# Device call E (4 H200s): NCCL all-reduce bandwidth; DDP scaling of 345M and 124M at a fixed
# per-GPU batch with gradients as bucket views (the new default), bucket size, the old copy;
# 124M at the recipe's global batch on 4 GPUs.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
nvidia-smi topo -m 2>&1 | head -8
python3 -m pip install --no-deps --no-build-isolation -q -e . 2>&1 | tail -1
T0=$SECONDS
b() { timeout "$1" python3 -m gptablate_cli bench "${@:2}" 2>&1 | tee -a $OUT/e_all.txt | grep -v "^\s*$" | tail -2; echo "  [t=$((SECONDS-T0))s]"; }
echo "== all-reduce"
for n in 4 2; do timeout 60 torchrun --standalone --nproc-per-node $n scripts/device/allreduce_bw.py 2>&1 | grep GPUs; done
echo "[t=$((SECONDS-T0))s]"
echo "== 345M, 30 per GPU: 1, 4 (bucket views, 25 MB)"
b 110 gpt2_345m --gpus 1 --steps 8 --set train.batch_size=30 --set train.micro_batch=30 --json $OUT/e_345_1.json
TORCH_LOGS=ddp_graphs b 130 gpt2_345m --gpus 4 --steps 8 --set train.batch_size=120 --set train.micro_batch=30 --json $OUT/e_345_4.json
echo "== 124M, 60 per GPU: 1, 4"
b 90 gpt2_124m --gpus 1 --steps 10 --set train.batch_size=60 --set train.micro_batch=60 --json $OUT/e_124_1.json
b 110 gpt2_124m --gpus 4 --steps 10 --set train.batch_size=240 --set train.micro_batch=60 --json $OUT/e_124_4.json
echo "== 124M, the recipe's global batch 60 on 4"
b 110 gpt2_124m --gpus 4 --steps 10 --json $OUT/e_124_r4.json
echo "== 345M, 4, 100 MB buckets"
b 130 gpt2_345m --gpus 4 --steps 8 --set train.batch_size=120 --set train.micro_batch=30 --set train.ddp_bucket_mb=100 --json $OUT/e_345_4_b100.json
echo "== 345M, 4, gradients copied into buckets (the old way)"
b 130 gpt2_345m --gpus 4 --steps 8 --set train.batch_size=120 --set train.micro_batch=30 --set train.ddp_bucket_view=false --json $OUT/e_345_4_copy.json
