#!/usr/bin/env bash
# Device call S (one H100): the loss's row kernels (the on-chip kernel, vectorized loads, L2 hints) swept and
# the fastest written; their GPU test; the layout of SDPA's q/k/v gradients; every kernel of the 12-layer
# baseline step with inductor's generated code; the baseline against the reference.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/s_pip.txt 2>&1
T0=$SECONDS
timeout -k 5 120 python3 -m pytest -q -k "gpu" tests/test_loss.py > $OUT/s_test.txt 2>&1; tail -1 $OUT/s_test.txt
timeout -k 5 180 python3 scripts/device/loss_kernel_bench.py --write-best > $OUT/s_loss.txt 2>&1
grep -E "fastest|written|failed" $OUT/s_loss.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 60 python3 - > $OUT/s_sdpa.txt 2>&1 <<'PY'
import torch, torch.nn.functional as F
B, T, H, D = 4, 1024, 12, 64
qkv = torch.randn(B, T, 3 * H * D, device="cuda", dtype=torch.bfloat16, requires_grad=True)
q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in qkv.split(H * D, dim=2))
for t in (q, k, v):
    t.retain_grad()
y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print("y", y.shape, y.stride())
y.float().square().sum().backward()
for name, t in (("q", q), ("k", k), ("v", v)):
    print(name, "input strides", t.stride(), "grad strides", t.grad.stride())
PY
cat $OUT/s_sdpa.txt
TORCH_LOGS=output_code timeout -k 5 240 python3 scripts/profile_step.py --layers 12 --micro 60 --top 40 \
  --csv $OUT/s_kernels.csv "" > $OUT/s_prof.txt 2> $OUT/s_code.txt
head -12 $OUT/s_prof.txt; echo "[t=$((SECONDS-T0))s]"
timeout -k 5 240 python3 -m gptablate_cli bench gpt2_124m --steps 30 --reference --json $OUT/s_bench.json \
  > $OUT/s_bench.txt 2>&1
tail -4 $OUT/s_bench.txt; echo "[t=$((SECONDS-T0))s]"
