"""The static hyper step's kernels against the torch reference (run by tests/test_hyperstep.py; "interp": on the CPU,
in Triton's interpreter)."""
import sys, torch, gptablate.model.hyperstatic as HSt, gptablate.model.kernels as K
interp = len(sys.argv) > 1 and sys.argv[1] == "interp"
K.INTERPRET = interp
dev = "cpu" if interp else "cuda"
torch.manual_seed(0)
worst = 0.0
# (n, S, D, M): the interpreter small shapes, a GPU the 124M model's rows and padded ones; S = 1 is the first write
CASES = [(4, 4, 24, 5), (4, 1, 20, 7), (3, 3, 130, 9), (2, 2, 64, 3)] if interp else (
    [(4, 4, 768, 3000), (4, 1, 768, 3000), (3, 3, 1600, 777), (4, 4, 1024, 50)])
for n, S, D, M in CASES:
    for store_h in (True, False):
        f = dict(device=dev, dtype=torch.float32)
        H = torch.randn(M, S, D, **f) * 2 + 0.3
        out = torch.randn(M, D, device=dev, dtype=torch.bfloat16)
        mix, b, r = torch.randn(S, n, **f), torch.randn(n, **f), torch.randn(n, **f)
        assert HSt.use_kernel(H), "the kernels would not run here: the check would compare the reference with itself"
        got = torch.ops.gptablate.hyper_static_step(H, out, mix, b, r, store_h)
        ref = HSt.static_step_reference(H.double(), out, mix.double(), b.double(), r.double(), store_h)
        for name, g, want in zip(("H1", "x"), got, ref):
            assert g.shape == want.shape, (name, g.shape, want.shape)
            err = (g.double() - want).abs().max().item() if want.numel() else 0.0
            worst = max(worst, err)
            assert err < 1e-4, (name, n, S, D, M, store_h, err)
        dH1 = torch.randn(M, n, D, **f) if store_h else torch.zeros(0, **f)
        dx = torch.randn(M, D, **f)
        bgot = torch.ops.gptablate.hyper_static_step_backward(H, out, mix, b, r, dH1 if store_h else dx, dx, store_h)
        bref = HSt.static_step_backward_reference(H.double(), out, mix.double(), b.double(), r.double(),
                                                   dH1.double(), dx.double(), store_h)
        for name, g, want in zip(("dH", "d_out", "P"), bgot, bref):
            assert g.shape == want.shape, (name, g.shape, want.shape)
            err = ((g.double() - want.double()).abs().max() / (1 + want.double().abs().max())).item()
            worst = max(worst, err)
            assert err < (2e-2 if name == "d_out" else 1e-4), (name, n, S, D, M, store_h, err)
print("ok", worst)
