"""The fused operations inside a compiled model (run by tests/test_addnorm.py on a GPU): inductor launches their
Triton kernels itself (the generated code names the kernels and calls none of the operations as an opaque custom
op), its analysis of what each kernel writes succeeds (else it would copy every input), and the compiled step's
loss and gradients are the eager step's with the same operations.

"cpu": the same model on the CPU (the operations' torch rules; no code check), to try the script without a GPU.
"block": the model compiled block by block (GPT.compile_blocks, train.compile_unit=block), the same checks."""
import logging
import sys

import torch
from torch._inductor.utils import run_and_get_code

from gptablate.model.gpt import GPT, GPTConfig

on_cpu = "cpu" in sys.argv[1:]
by_block = "block" in sys.argv[1:]
dev = "cpu" if on_cpu else "cuda"
KERNELS = ("_add_norm_fwd_kernel", "_add_norm_bwd_kernel", "_bias_gelu_fwd_kernel", "_bias_gelu_bwd_kernel",
           "_qkv_join_kernel")
OPS = ("gptablate.add_norm", "gptablate.bias_gelu", "gptablate.qkv_join")


class Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.seen = []

    def emit(self, record):
        self.seen.append(record.getMessage())


def step(model, idx, targets):
    model.zero_grad(set_to_none=True)
    with torch.autocast(dev, dtype=torch.bfloat16):
        loss = model(idx, targets)
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in model.parameters()]


torch.manual_seed(0)
width = 64 if on_cpu else 768
model = GPT(GPTConfig(n_layer=2, n_head=4 if on_cpu else 12, n_embd=width, block_size=128,
                      vocab_size=512 if on_cpu else 50257)).to(dev)
model.fused_kernels = True
idx = torch.randint(0, model.config.vocab_size, (4, 128), device=dev)
targets = torch.randint(0, model.config.vocab_size, (4, 128), device=dev)
eager_loss, eager_grads = step(model, idx, targets)

caught = Warnings()
logging.getLogger("torch._higher_order_ops.triton_kernel_wrap").addHandler(caught)
compiled = model.compiled("block" if by_block else "model")  # as the engine compiles it
(loss, grads), code = run_and_get_code(step, compiled, idx, targets)
code = "\n".join(code)
assert not caught.seen, caught.seen
if not on_cpu:
    missing = [k for k in KERNELS if k not in code]
    assert not missing, f"inductor's code does not launch {missing}"
    opaque = [op for op in OPS if f"torch.ops.{op}" in code]
    assert not opaque, f"inductor's code calls {opaque} as opaque operations"
rel = abs(loss.item() - eager_loss.item()) / abs(eager_loss.item())
assert rel < 1e-3, (loss.item(), eager_loss.item())
worst = 0.0
for (name, _), g, e in zip(model.named_parameters(), grads, eager_grads):
    err = ((g - e).norm() / e.norm().clamp_min(1e-12)).item()
    assert err < 3e-2, (name, err)
    worst = max(worst, err)
print(f"ok{' (by block)' if by_block else ''}: compiled loss {loss.item():.5f} (eager {eager_loss.item():.5f}); worst gradient error {worst:.2e}"
      + ("" if on_cpu else f"; inductor launches {len(KERNELS)} kernels of the fused operations itself"))
