"""The add_norm and bias_gelu kernels against the torch reference (run by tests/test_addnorm.py).

"interp": on the CPU, in Triton's interpreter, at small shapes; else on a GPU at the 124M model's widths."""
import sys

import torch

import gptablate.model.kernels as K
from gptablate.model import addnorm as AN
from gptablate.model import biasgelu as BG

interp = len(sys.argv) > 1 and sys.argv[1] == "interp"
K.INTERPRET = interp
dev = "cpu" if interp else "cuda"
torch.manual_seed(0)
SHAPES = [(7, 24), (9, 20), (3, 64)] if interp else [(3001, 768), (61, 1600), (5, 20)]
low = torch.float32 if interp else torch.bfloat16  # the sublayer's output and h (bf16 under autocast)
worst = 0.0
for M, D in SHAPES:
    for has_add in (True, False):
        for center in (True, False):
            for with_biases in (True, False):
                f = dict(device=dev, dtype=torch.float32)
                x = torch.randn(M, D, **f) * 2 + 0.5
                out = torch.randn(M, D, device=dev).to(low)
                pb = torch.randn(D, **f) * 0.1 if with_biases else None
                w = 1 + 0.3 * torch.randn(D, **f)
                b = 0.1 * torch.randn(D, **f) if with_biases else None
                dxn, dh = torch.randn(M, D, **f), torch.randn(M, D, device=dev).to(low)
                leaves = [t.clone().requires_grad_() for t in (x, out, pb, w, b) if t is not None]
                it = iter(leaves)
                lx, lout = next(it), next(it)
                lpb = next(it) if with_biases else None
                lw = next(it)
                lb = next(it) if with_biases else None
                xn, h = AN.add_norm(lx, lout if has_add else None, lpb, lw, lb, 1e-5, center, low)
                grads = torch.autograd.grad((h.float() * dh.float()).sum() + ((xn * dxn).sum() if has_add else 0),
                                            [t for t in leaves if has_add or (t is not lout and t is not lpb)])
                # the reference in float64
                d = lambda t: None if t is None else t.double()
                rx, rout, rpb, rw, rb = (None if t is None else t.double().requires_grad_() for t in (x, out, pb, w, b))
                e = torch.zeros(0, dtype=torch.float64, device=dev)
                rxn, rh, _, _ = AN.add_norm_reference(rx, rout, rpb if rpb is not None else e, rw,
                                                      rb if rb is not None else e, 1e-5, has_add, center,
                                                      torch.float64)
                used = [t for t in (rx, rout, rpb, rw, rb)
                        if t is not None and (has_add or (t is not rout and t is not rpb))]
                rgrads = torch.autograd.grad((rh * d(dh)).sum() + ((rxn * d(dxn)).sum() if has_add else 0), used)
                outs = [(h.double(), rh)] + ([(xn.double(), rxn)] if has_add else []) + list(
                    zip((g.double() for g in grads), rgrads))
                for got, ref in outs:
                    err = ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-6)).item()
                    tol = 1e-5 if low == torch.float32 else 1.5e-2
                    assert err < tol, (M, D, has_add, center, with_biases, err)
                    worst = max(worst, err)
# a second term added with out (LAuReL-LR's low-rank path): its gradient is out's; and x' in h's dtype as a
# third output, whose gradient the backward adds to x''s
for M, D in SHAPES:
    for center in (True, False):
        f = dict(device=dev, dtype=torch.float32)
        x, w, pb = torch.randn(M, D, **f) * 2 + 0.5, 1 + 0.3 * torch.randn(D, **f), torch.randn(D, **f) * 0.1
        out, extra = torch.randn(M, D, device=dev).to(low), (0.5 * torch.randn(M, D, device=dev)).to(low)
        dxn, dh, dxc = torch.randn(M, D, **f), torch.randn(M, D, device=dev).to(low), torch.randn(M, D, device=dev)
        leaves = [t.clone().requires_grad_() for t in (x, out, extra, pb, w)]
        xn, h, xc = AN.add_norm(leaves[0], leaves[1], leaves[3], leaves[4], None, 1e-5, center, low, leaves[2], True)
        grads = torch.autograd.grad((h.float() * dh.float()).sum() + (xn * dxn).sum() + (xc.float() * dxc).sum(),
                                    leaves)
        ref = [t.double().requires_grad_() for t in (x, out, extra, pb, w)]
        e = torch.zeros(0, dtype=torch.float64, device=dev)
        rxn, rh, _, _ = AN.add_norm_reference(ref[0], ref[1], ref[3], ref[4], e, 1e-5, True, center, torch.float64,
                                              ref[2])
        rgrads = torch.autograd.grad((rh * dh.double()).sum() + (rxn * dxn.double()).sum() + (rxn * dxc.double()).sum(),
                                     ref)
        for got, want in [(h.double(), rh), (xn.double(), rxn), (xc.double(), rxn)] + list(
                zip((g.double() for g in grads), rgrads)):
            err = ((got - want).abs().max() / want.abs().max().clamp_min(1e-6)).item()
            assert err < (1e-5 if low == torch.float32 else 1.5e-2), ("extra", M, D, center, err)
            worst = max(worst, err)
# bias_gelu: the activation, and the gradients of the pre-activation and the bias, against float64
for M, N in ([(7, 24), (9, 40)] if interp else [(3001, 3072), (61, 100)]):
    pre = (torch.randn(M, N, device=dev) * 2).to(low).requires_grad_()
    b = (0.3 * torch.randn(N, device=dev)).requires_grad_()
    dact = torch.randn(M, N, device=dev).to(low)
    act = BG.bias_gelu(pre, b)
    got = torch.autograd.grad(act, (pre, b), dact)
    rpre, rb = pre.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    ract = torch.nn.functional.gelu(rpre + rb, approximate="tanh")
    want = torch.autograd.grad(ract, (rpre, rb), dact.double())
    for g, r in [(act.double(), ract)] + list(zip((t.double() for t in got), want)):
        err = ((g - r).abs().max() / r.abs().max()).item()
        assert err < (1e-5 if low == torch.float32 else 1.5e-2), (M, N, err)
        worst = max(worst, err)
print(f"ok: the add_norm and bias_gelu kernels match the reference; worst relative error {worst:.2e}")
