"""Top CUDA kernels of a compiled training step, per architecture variant (needs a GPU).

    python3 scripts/profile_step.py "" "arch.residual=mhc" "arch.residual=hyper,arch.hyper.dynamic=false"

Each argument is a comma-separated list of recipe overrides on gpt2_124m at 4 layers ("" is the
baseline); the step is micro-batch 16 x 1024, bf16 autocast, compiled, fused AdamW, the loss as
train.loss_kernel says (auto: fused with the head), as in bench.
Prints torch.profiler's table of the 14 most expensive kernels over 5 steps.
"""
import sys, torch
from gptablate.recipe import load_recipe
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.train.engine import fused_loss_dtype
from gptablate.train.optim import make_optimizer
from torch.profiler import profile, ProfilerActivity

for spec in sys.argv[1:]:
    sets = ["model.n_layer=4"] + [s for s in spec.split(",") if s]
    r = load_recipe("gpt2_124m", sets)
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_recipe(r)).cuda()
    model.fused_loss_dtype = fused_loss_dtype(r.train.loss_kernel, torch.device("cuda"), torch.bfloat16)
    opt = make_optimizer(model, r.train, "cuda")
    cm = torch.compile(model)
    x = torch.randint(0, 50257, (16, 1025), device="cuda")
    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = cm(x[:, :-1], x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
    for _ in range(4):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            step()
        torch.cuda.synchronize()
    print(f"==== {spec or 'baseline'}")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=70))
    torch._dynamo.reset()
