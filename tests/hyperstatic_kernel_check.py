"""The static hyper step's kernels against the torch reference (run by tests/test_hyperstep.py; "interp": on the CPU,
in Triton's interpreter): without a norm, and with the next site's LayerNorm (with and without bias) or RMSNorm folded
in."""
import sys, torch, gptablate.model.hyperstatic as HSt, gptablate.model.kernels as K
from gptablate.model.addnorm import add_norm_reference
interp = len(sys.argv) > 1 and sys.argv[1] == "interp"
K.INTERPRET = interp
dev = "cpu" if interp else "cuda"
torch.manual_seed(0)
worst = 0.0


def close(name, got, want, tol, case):
    global worst
    assert got.shape == want.shape, (name, got.shape, want.shape, case)
    if not want.numel():
        return
    err = ((got.double() - want.double()).abs().max() / (1 + want.double().abs().max())).item()
    worst = max(worst, err)
    assert err < tol, (name, err, case)


# (n, S, D, M): the interpreter small shapes, a GPU the 124M model's rows and padded ones; S = 1 is the first write
CASES = [(4, 4, 24, 5), (4, 1, 20, 7), (3, 3, 130, 9), (2, 2, 64, 3)] if interp else (
    [(4, 4, 768, 3000), (4, 1, 768, 3000), (3, 3, 1600, 777), (4, 4, 1024, 50)])
NORMS = [None, ("layernorm", True), ("layernorm", False), ("rmsnorm", False)]
for n, S, D, M in CASES:
    for store_h in (True, False):
        for norm in NORMS:
            case = (n, S, D, M, store_h, norm)
            f = dict(device=dev, dtype=torch.float32)
            H = torch.randn(M, S, D, **f) * 2 + 0.3
            out = torch.randn(M, D, device=dev, dtype=torch.bfloat16)
            mix, b, r = torch.randn(S, n, **f), torch.randn(n, **f), torch.randn(n, **f)
            empty = H.new_zeros(0)
            center = norm is not None and norm[0] == "layernorm"
            weight = 1 + 0.3 * torch.randn(D, **f) if norm else empty
            bias = 0.2 * torch.randn(D, **f) if norm and norm[1] else empty
            assert HSt.use_kernel(H), "the kernels would not run here: the check would compare the reference to itself"
            got = torch.ops.gptablate.hyper_static_step(H, out, mix, b, r, weight, bias, 1e-5, center, torch.bfloat16,
                                                        store_h)
            H1, x = HSt.static_step_reference(H.double(), out, mix.double(), b.double(), r.double(), store_h)
            close("H1", got[0], H1, 1e-4, case)
            close("x", got[1], x, 1e-4, case)
            if norm:
                _, h, mean, rstd = add_norm_reference(x, None, None, weight.double(), bias.double(), 1e-5, False,
                                                      center, torch.float64)
                close("h", got[2].float(), h, 1e-2, case)  # bf16
                assert got[2].dtype == torch.bfloat16
                close("mean", got[3], mean, 1e-4, case)
                close("rstd", got[4], rstd, 1e-4, case)
            else:
                assert all(t.numel() == 0 for t in got[2:])
            dH1 = torch.randn(M, n, D, **f) if store_h else empty
            g = torch.randn(M, D, device=dev, dtype=torch.bfloat16 if norm else torch.float32)
            # the backward's saved tensors as the forward left them; the reference in float64 from the same
            saved = (got[1], got[3], got[4]) if norm else (empty, empty, empty)
            bgot = torch.ops.gptablate.hyper_static_step_backward(H, out, mix, b, r, dH1, g, *saved, weight, center,
                                                                  store_h)
            bref = HSt.static_step_backward_reference(
                H.double(), out, mix.double(), b.double(), r.double(), dH1.double(), g.double(), store_h,
                tuple(t.double() for t in saved) + (weight.double(), center) if norm else None)
            for name, a, want in zip(("dH", "d_out", "P", "norm sums"), bgot, bref):
                close(name, a, want, 2e-2 if name == "d_out" else 1e-4, case)
            if not norm:
                assert bgot[3].numel() == 0
print("ok", worst)
