"""A model with its fused operations against the same model without them (tests of model/*.py's fused paths)."""

import torch


def assert_fused_is_plain(model, loss_tol: dict, grad_tol: dict) -> None:
    """The model's loss and every gradient with its fused kernels (their torch rules on the CPU) and without, equal
    within torch.allclose's loss_tol and grad_tol; every module with a `fused` flag follows GPT.fused_kernels."""
    idx = torch.randint(0, model.config.vocab_size, (2, 16))
    results = []
    for fused in (False, True):
        model.fused_kernels = fused
        flagged = [m for m in model.modules() if hasattr(m, "fused")]  # sublayers, attnres's aggregations
        assert len(flagged) >= 2 * model.config.n_layer and all(m.fused is fused for m in flagged)
        model.zero_grad(set_to_none=True)
        loss = model(idx[:, :-1], idx[:, 1:])
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (l0, g0), (l1, g1) = results
    assert torch.allclose(l0, l1, **loss_tol)
    assert g0.keys() == g1.keys()
    for name in g0:
        assert torch.allclose(g0[name], g1[name], **grad_tol), name


def assert_op_backward_is_autograds(op, reference, tensors, flags) -> None:
    """A custom op's first three outputs and its hand-written backward against autograd through its torch reference
    (float64 tensors): the outputs to 1e-12, the gradient of every tensor that requires one to 1e-10."""
    want_out = reference(*tensors, *flags)[:3]
    got_out = op(*tensors, *flags)[:3]
    weights = [torch.randn_like(t) for t in want_out]
    loss = lambda outs: sum((o * w).sum() for o, w in zip(outs, weights))
    grads_of = [t for t in tensors if t.requires_grad]
    want = torch.autograd.grad(loss(want_out), grads_of)
    got = torch.autograd.grad(loss(got_out), grads_of)
    for o, w in zip(got_out, want_out):
        assert torch.allclose(o, w, atol=1e-12)
    for a, b in zip(got, want):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-10), (a - b).abs().max()


def assert_compiled_autocast_keeps_gradients(fn, tensors) -> None:
    """fn(*tensors) -> a scalar, an operation on fp32 streams that runs with autocast off: compiled (aot_eager) under
    CPU autocast to bf16, its gradients must be those of eager code without autocast (to fp32 rounding). AOTAutograd
    traces a custom op's backward with the forward's autocast on, so a matmul there would run in bf16."""
    def grads(f, autocast):
        for t in tensors:
            t.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = f(*tensors)
        loss.backward()
        return [t.grad.clone() for t in tensors if t.requires_grad]

    want = grads(fn, False)
    got = grads(torch.compile(fn, backend="aot_eager", fullgraph=True), True)
    for a, b in zip(got, want):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max(), (a - b).abs().max() / b.abs().max()


def kernel_key_paths(build, key: str) -> tuple:
    """The models build([key=fused]) and build([key=torch]) with the same weights (a residual strategy's kernel key,
    arch.hyper.kernel or arch.mhc.kernel); asserts that only the first takes the fused operation on the CPU, and that
    auto does not (there the per-site code runs, which inductor compiles)."""
    fused, plain = build([f"{key}=fused"]), build([f"{key}=torch"])
    cpu = torch.zeros(1)
    assert fused.residual.fused_for(cpu) and not plain.residual.fused_for(cpu)
    assert build([]).residual.fused_for(cpu) is False
    plain.load_state_dict(fused.state_dict())
    return fused, plain


def perturb_alike(models, perturb, seed: int = 1) -> torch.Generator:
    """Each model's parameters moved alike, perturb(name, p, e) with e the same N(0, 1) draw for every model (drawn on
    the CPU, then on the parameter's device): the generator, for the draws that follow."""
    g = torch.Generator().manual_seed(seed)
    noise = [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for p in models[0].parameters()]
    with torch.no_grad():
        for model in models:
            for (name, p), e in zip(model.named_parameters(), noise):
                perturb(name, p, e)
    return g


def losses_after_perturbing(models, perturb, seed: int = 1) -> list:
    """The models perturbed alike (perturb_alike), then one batch of 2 x 16 tokens forward and backward: the losses."""
    g = perturb_alike(models, perturb, seed)
    x = torch.randint(0, models[0].config.vocab_size, (2, 17), generator=g).to(next(models[0].parameters()).device)
    losses = [model(x[:, :-1], x[:, 1:]) for model in models]
    for loss in losses:
        loss.backward()
    return losses


def assert_bf16_streams_follow_fp32(build, variant: str, op_name: str, perturb, monkeypatch) -> None:
    """A multi-stream variant with arch.<variant>.stream_dtype=bfloat16 against the same fp32 model (same weights,
    perturbed alike, one batch), for the fused step (its torch rule on the CPU) and the per-site code: each step's
    streams really in bf16 (the fused walk's calls of residuals.<op_name> record them), the loss within 2e-3 of fp32's,
    the model's whole gradient within 2% of its norm and each weight matrix's (256 numbers or more, its gradient at
    least 1e-4 of the whole's) within 5%. The rounding of n streams to bf16 at every site moves a matrix's gradient by
    about 1% (2 layers); a gradient made of terms that cancel by up to several times itself: hyper's s_b (1e-4 where
    A_s's is 2e-2), mHC's φ_res (1e-12 to 4e-7, its R near its saturated start; the streams' differences, which its
    gradient takes, are what bf16 rounds the most)."""
    from gptablate.model import residuals
    seen = []
    step = getattr(residuals, op_name)

    def recording(Hk, *args, **kwargs):
        outs = step(Hk, *args, **kwargs)
        seen.append((Hk.dtype, outs[0].dtype))
        return outs

    monkeypatch.setattr(residuals, op_name, recording)
    key = f"arch.{variant}"
    base = build([f"{key}.kernel=fused"])
    models = [base] + [build([f"{key}.kernel={k}", f"{key}.stream_dtype=bfloat16"]) for k in ("fused", "torch")]
    for model in models[1:]:
        model.load_state_dict(base.state_dict())
    losses = losses_after_perturbing(models, perturb)
    fp32_calls = len(seen) // 2  # the fp32 model's calls, then as many of the bf16 fused model's
    assert seen[:fp32_calls] == [(torch.float32, torch.float32)] * fp32_calls
    assert seen[fp32_calls:] == [(torch.bfloat16, torch.bfloat16)] * fp32_calls and fp32_calls >= 2
    flat = lambda model: torch.cat([p.grad.flatten() for p in model.parameters()])
    for loss, model in zip(losses[1:], models[1:]):
        assert abs(loss.item() - losses[0].item()) < 2e-3, (loss.item(), losses[0].item())
        assert (flat(model) - flat(base)).norm() <= 2e-2 * flat(base).norm()
        for (name, p), q in zip(model.named_parameters(), base.parameters()):
            if p.numel() >= 256 and q.grad.norm() >= 1e-4 * flat(base).norm():
                assert (p.grad - q.grad).norm() <= 5e-2 * q.grad.norm(), (name, p.grad, q.grad)
