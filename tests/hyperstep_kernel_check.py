"""The hyper_step kernels against the torch reference (run by tests/test_hyperstep.py; "interp": on the CPU, in Triton's interpreter)."""
import sys, torch, gptablate.model.hyperstep as HS, gptablate.model.kernels as K
interp = len(sys.argv) > 1 and sys.argv[1] == "interp"
K.INTERPRET = interp
if interp:  # the weight gradient of bf16 streams takes a bf16 tl.dot, which the interpreter gets wrong unmended
    from interpreter import mend_interpreter_dot
    mend_interpreter_dot()
dev = "cpu" if interp else "cuda"
torch.manual_seed(0)
worst = 0.0
# the interpreter: small shapes, every case; a GPU: the 124M model's rows (every case), one padded shape and 1.5B's rows
# of 1,600 features, whose kernels launch with more warps (hyperstep.launch_warps: the forward 4, 4 parts; the backward
# 8, 2 parts; the dynamic site with and without its norm); each case is two kernels to compile, a second or two each;
# 17 or 300 tokens: a grid that runs past the last token.
# The site's norm folded in (dynamic only, as the model takes it): None, or (center, with a bias): LayerNorm with and
# without bias, RMSNorm (center: the streams' norms are of the same kind)
NORMS = [None, (True, True), (True, False), (False, False)]
CASES = [(n, D, M, d, c, w, None) for n, D, M in ((4, 24, 5), (3, 20, 7), (2, 64, 3), (4, 768, 3))
         for d in (True, False) for c in (True, False) for w in (True, False)] if interp else (
    [(4, 768, 300, d, c, w, None) for d in (True, False) for c in (True, False) for w in (True, False)]
    + [(3, 20, 7, True, True, True, None), (4, 1600, 300, True, True, True, None)])
FOLD_SHAPES = ((4, 24, 5), (3, 20, 7), (1, 24, 5), (4, 24, 17)) if interp else (
    (4, 768, 300), (3, 20, 7), (1, 24, 5), (4, 1600, 300))
CASES += [(n, D, M, True, nm[0], w, nm) for n, D, M in FOLD_SHAPES for nm in NORMS[1:] for w in (True, False)]
CASES = [(*case, None) for case in CASES]
# the kernels lay a row out in parts of one chunk of 128 features a warp: at other warps than TUNING's, 768 features
# are other parts (1 warp: 6 parts, 2: 3, 4: 2 of which the second is half masked); on a GPU (each case two kernels to
# compile) the warps TUNING does not have, LayerNorm with a bias
CASES += [(4, 768, 3, True, nm[0], w, nm, warps) for nm in NORMS[1:3] for w in (True, False) for warps in (1, 2, 4)
          ] if interp else [(4, 768, 300, True, True, w, NORMS[1], warps) for w in (True, False) for warps in (1, 4)]
CASES = [(*case, torch.float32) for case in CASES]
# bf16 streams (arch.hyper.stream_dtype): H, H', dH', dH stored in bf16, the rest as above; the dynamic site with and
# without its norm (LayerNorm with a bias, RMSNorm), with and without the write; on a GPU at 768 features, and one case
# at 1,600
CASES += [(n, D, M, True, nm is None or nm[0], w, nm, None, torch.bfloat16) for n, D, M in
          (((4, 24, 5), (3, 20, 7)) if interp else ((4, 768, 300),))
          for nm in (None, NORMS[1], NORMS[3]) for w in (True, False)]
CASES += [] if interp else [(4, 1600, 300, True, True, True, NORMS[1], None, torch.bfloat16)]
TUNING = dict(HS.TUNING)
if interp:  # the weight gradient's kernels at a few rows a program (the interpreter steps through each)
    HS.WGRAD = (2, 4, 32, 1, 2)
    HS.WGRAD_DOT = (2, 16, 32, 1, 2)
for n, D, M, dynamic, center, has_write, norm, warps, sd in CASES:
    HS.TUNING = {k: (v[0], (warps, None), (warps, None)) for k, v in TUNING.items()} if warps else TUNING
    f = dict(device=dev, dtype=torch.float32)
    Hk = (torch.randn(M, n, D, **f) * 2 + 0.3).to(sd)
    out = torch.randn(M, D, device=dev, dtype=torch.bfloat16)
    Ck = torch.randn(M, n, n + 2, **f)
    wt = torch.randn(n + 2, D, **f) * 0.3
    bw = torch.randn(n + 2, **f) * 0.1
    s = torch.tensor([0.3, -0.2], **f)
    a_s = torch.randn(n, n + 1, **f)
    b_s = torch.randn(n, **f)
    nw = 1 + 0.3 * torch.randn(D, **f) if norm else torch.zeros(0, **f)
    nb = 0.2 * torch.randn(D, **f) if norm and norm[1] else torch.zeros(0, **f)
    h_dtype = torch.bfloat16 if norm else torch.float32
    if not has_write:
        out, Ck = out.new_zeros(0), Ck.new_zeros(0)
    if not dynamic:
        wt, bw, s = wt.new_zeros(0), bw.new_zeros(0), s.new_zeros(0)
    args = (Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, 1e-5, has_write, dynamic, center, h_dtype)
    got = torch.ops.gptablate.hyper_step(*args)
    wide = lambda a: a.double() if isinstance(a, torch.Tensor) and a.dtype in (torch.float32, sd) else a
    ref = HS.hyper_step_reference(*[wide(a) for a in args[:-1]], torch.float64)
    case = (n, D, dynamic, center, has_write, norm, warps, sd)
    for name, g, r in zip(("H1", "y", "C1", "z", "mean", "rstd", "nmean", "nrstd"), got, ref):
        assert g.shape == r.shape, (name, case)
        err = (g.double() - r).abs().max().item() if r.numel() else 0.0
        if name == "y" and norm:  # h in bf16: its rounding
            err /= 1 + r.abs().max().item()
            assert g.dtype == torch.bfloat16 and err < 1e-2, (name, case, err)
            continue
        if name == "H1" and sd == torch.bfloat16:  # H' rounded to the streams' bf16 (the rest from H' before it): 2^-8
            # of a value on a GPU, which rounds to nearest; the interpreter truncates, 2^-7
            err /= 1 + r.abs().max().item()
            assert g.dtype == sd and err < 1e-2, (name, case, err)
            continue
        worst = max(worst, err)
        assert err < 1e-4, (name, case, err)
    H1, y, C1, z, mean, rstd, nmean, nrstd = got
    dH1 = torch.randn(H1.shape, device=dev).to(sd); dy = torch.randn_like(y); dC1 = torch.randn_like(C1)
    bgot = torch.ops.gptablate.hyper_step_backward(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dy, dC1, nw,
                                                   nmean, nrstd, has_write, dynamic, center)
    # H' as the backward forms it, from H and out before any rounding (the reference's, exact; bf16 H1 is rounded)
    bargs = (Hk, out, Ck, wt, s, ref[0] if sd == torch.bfloat16 else H1, C1, torch.tanh(z), mean, rstd, dH1, dy, dC1,
             has_write, dynamic, center)
    bref = HS.hyper_step_backward_reference(*[wide(a) for a in bargs],
                                            (wide(nmean), wide(nrstd), wide(nw)) if norm else None)
    if not norm:
        bref = (*bref, None)
    for name, g, r in zip(("dHk", "d_out", "dCk", "dz", "dCt", "wsums"), bgot, bref):
        if r is None:
            assert g.numel() == 0, (name, case)
            continue
        err = ((g.double() - r.double()).abs().max() / (1 + r.double().abs().max())).item()
        if name == "dHk" and sd == torch.bfloat16:  # dH rounded to bf16
            assert g.dtype == sd and err < 1e-2, (name, case, err)
            continue
        worst = max(worst, err)
        assert err < (2e-2 if name == "d_out" else 1e-4), (name, case, err)
    if dynamic:  # the projection's weight gradient from the dz just taken: at WGRAD's (WGRAD_DOT's) shape, and at 12
        # programs an SM (4 rows a program in the interpreter, whose "SMs" are 4; 16 for the dot), several blocks of
        # features and a last block of rows past the end. bf16 streams take the tensor cores' kernel (weight_grad),
        # whose a = dz·rstd is two bf16 terms (formed in torch), within 2^-17 of a term
        dz = bgot[3]
        wr = HS.hyper_weight_grad_reference(*[wide(a) for a in (H1, dz, mean, rstd)])
        dot = sd == torch.bfloat16
        for shape in (None, (12, 16 if dot else 4, 16, 1, 2)):
            wg = HS.weight_grad(H1, dz, mean, rstd, shape) if dot or shape is None else (
                HS.weight_grad_kernel(H1, dz, mean, rstd, shape))
            err = ((wg.double() - wr).abs().max() / (1 + wr.abs().max())).item()
            worst = max(worst, err)
            assert wg.shape == wr.shape and err < (5e-5 if dot else 1e-5), ("dwt", shape, case, err)
print("ok", worst)
