import math

import torch
import torch.nn.functional as F

from gptablate.model.gpt import GPT, GPTConfig


def small(**kw):
    return GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, **kw)


def test_gpt2_124m_parameter_count_and_names():
    with torch.device("meta"):
        m = GPT(GPTConfig())
    # nanoGPT reports 123.69M for GPT-2 124M with the vocabulary padded to 50304.
    assert m.num_params() == 123_689_472
    assert m.num_params(non_embedding=False) == 123_689_472 + 1024 * 768
    names = set(dict(m.named_parameters()))
    for key in ("transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.bias",
                "transformer.h.11.mlp.c_fc.weight", "transformer.h.11.mlp.c_proj.weight", "transformer.ln_f.bias"):
        assert key in names
    assert m.lm_head.weight is m.transformer.wte.weight
    assert m.transformer.wte.weight.shape[0] == 50304


def test_init_scales_residual_projections():
    torch.manual_seed(0)
    m = GPT(GPTConfig(n_layer=8, n_head=4, n_embd=256, block_size=32))
    std = m.transformer.h[0].mlp.c_proj.weight.std().item()
    assert abs(std - 0.02 / math.sqrt(16)) < 0.001
    assert abs(m.transformer.h[0].mlp.c_fc.weight.std().item() - 0.02) < 0.001


def test_padding_logits_never_enter_the_softmax():
    torch.manual_seed(0)
    m = GPT(small())
    with torch.no_grad():
        m.transformer.wte.weight[50257:] = 100.0  # padding rows that would dominate a softmax
    idx = torch.randint(0, 50257, (2, 16))
    logits = m(idx)
    assert logits.shape == (2, 16, 50257)
    loss = m(idx[:, :-1], idx[:, 1:])
    ref = F.cross_entropy(m(idx[:, :-1]).reshape(-1, 50257), idx[:, 1:].reshape(-1))
    assert torch.allclose(loss, ref) and loss.item() < 20


def test_causal():
    torch.manual_seed(0)
    m = GPT(small()).eval()
    a = torch.randint(0, 50257, (1, 16))
    b = a.clone()
    b[0, 9] = (a[0, 9] + 1) % 50257
    la, lb = m(a), m(b)
    assert torch.equal(la[:, :9], lb[:, :9])
    assert not torch.allclose(la[:, 9:], lb[:, 9:])


def test_sum_reduction_matches_mean():
    torch.manual_seed(0)
    m = GPT(small())
    x, y = torch.randint(0, 50257, (3, 16)), torch.randint(0, 50257, (3, 16))
    assert torch.allclose(m(x, y, reduction="sum") / y.numel(), m(x, y), atol=1e-6)
