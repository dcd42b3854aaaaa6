"""Static Hyper-Connections' stream work between two sites as one operation on a flat grid.

A static site's A and B are the same for every token (VARIANTS.md: no W, no s, no N_k), so site k's
write H'_j = Σ_i A_k[i, j+1]·H_i + B_k[j]·out and site k+1's read x_in' = Σ_j A_{k+1}[j, 0]·H'_j are
element-wise over (token, feature): nothing a kernel does needs a whole row. hyperstep.py's kernels,
written for the dynamic case (whose coefficients come from each token's normalised row), take a token
at a time and reduce over its features; for the static case that left the backward at about 2 TB/s
(1.29 ms a site at the 124M step, call R). Here the forward is a (tokens x features) grid, and the
backward a grid of column blocks, each program looping over its share of tokens and keeping the
connection weights' gradient sums per column in registers until its end: no reduction across threads
inside the loop.

The operation: (H', x) = static_step(H, out, mix, b, r, store_h), H (M, S, D) fp32 with S = n, or
S = 1 for n equal streams stored once (the first write: the entry's n copies of x are never made);
mix (S, n) = A_k[:, 1:] (summed over the rows for S = 1), b (n) = B_k, r (n) = A_{k+1}[:, 0]. H'
(M, n, D) is written only with store_h; x (M, D) fp32 is Σ_j r_j H'_j, so the exit's sum over the
streams is the same operation with r = 1 and no H' written. The backward returns the gradients of H
and out and the (S + 1) x (n + 1) sums P[s, t] = Σ over tokens and features of source_s · target_t,
sources (H_0 .. H_{S-1}, out) and targets (dH*_0 .. dH*_{n-1}, dx), dH*_j = dH'_j + r_j dx, from which
the gradients of mix, b and r follow (dr through linearity: Σ H'_j dx = Σ_i mix[i, j] P[i, n] + b_j P[S, n]).

On CUDA with Triton, the kernels; elsewhere (and for float64) the same computation in torch
(`static_step_reference`, `static_step_backward_reference`), which the tests hold to autograd.
"""

from __future__ import annotations

import torch

from .kernels import kernel_op, sm_count, tl, triton, use_kernel

# (tokens a program, warps) of the forward; (programs per SM, tokens an iteration, warps) of the backward. A
# program's columns are 128 x warps (a warp's 32 lanes x 4), so the streams and tokens of a tile lie within a
# thread and its sums over them need no other thread. The fastest of scripts/device/hyperstatic_bench.py's sweep on
# the 124M step's streams (61,440 x 4 x 768, one H100, call CF): forward 0.616 ms (2.9 TB/s), backward 0.920 ms
# (2.9 TB/s), where hyperstep.py's token-row kernels took 0.626 and 1.295 ms for the same site; 7 of the 27
# backward shapes were within 2% of the best.
FWD = (1, 8)
BWD = (4, 2, 2)


def static_step_reference(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                          store_h: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(H' or an empty tensor, x) in torch; differentiable, the tests' oracle."""
    H1 = (mix[None, :, :, None] * H[:, :, None, :]).sum(1) + b[None, :, None] * out[:, None, :].to(H.dtype)
    x = (r[None, :, None] * H1).sum(1)
    return (H1 if store_h else H1.new_zeros(0)), x


def static_step_backward_reference(H, out, mix, b, r, dH1, dx, store_h: bool):
    """(dH, d_out, P) by the hand-written rule the backward kernel follows."""
    dht = r[None, :, None] * dx[:, None, :]
    if store_h:
        dht = dht + dH1
    dH = (mix[None, :, :, None] * dht[:, None, :, :]).sum(2)
    d_out = (b[None, :, None] * dht).sum(1)
    sources = torch.cat((H, out[:, None, :].to(H.dtype)), 1)
    targets = torch.cat((dht, dx[:, None, :]), 1)
    P = torch.einsum("msd,mtd->st", sources, targets)
    return dH, d_out.to(out.dtype), P


if triton is not None:
    @triton.jit
    def _hyper_static_fwd_kernel(h_ptr, out_ptr, mix_ptr, b_ptr, r_ptr, h1_ptr, x_ptr, M, D,
                                 S: tl.constexpr, N: tl.constexpr, NP: tl.constexpr, BM: tl.constexpr,
                                 BD: tl.constexpr, STORE_H: tl.constexpr):
        rows = tl.program_id(0) * BM + tl.arange(0, BM)
        cols = tl.program_id(1) * BD + tl.arange(0, BD)
        j = tl.arange(0, NP)[:, None, None]  # the written streams
        jmask = j < N
        m = rows.to(tl.int64)[None, :, None]
        c = cols[None, None, :]
        mask = (rows < M)[None, :, None] & (cols < D)[None, None, :]  # (1, BM, BD)
        o = tl.load(out_ptr + m * D + c, mask=mask, other=0.0).to(tl.float32)
        h1 = tl.load(b_ptr + j, mask=jmask, other=0.0) * o  # (NP, BM, BD)
        for i in tl.static_range(S):
            hi = tl.load(h_ptr + (m * S + i) * D + c, mask=mask, other=0.0)
            h1 += tl.load(mix_ptr + i * N + j, mask=jmask, other=0.0) * hi
        if STORE_H:
            tl.store(h1_ptr + (m * N + j) * D + c, h1, mask=mask & jmask)
        x = tl.sum(tl.load(r_ptr + j, mask=jmask, other=0.0) * h1, axis=0, keep_dims=True)
        tl.store(x_ptr + m * D + c, x, mask=mask)

    @triton.jit
    def _hyper_static_bwd_kernel(h_ptr, out_ptr, mix_ptr, b_ptr, r_ptr, dh1_ptr, dx_ptr, dh_ptr, dout_ptr, part_ptr,
                                 M, D, n_row_programs, blocks_per_program,
                                 S: tl.constexpr, N: tl.constexpr, NP: tl.constexpr, SP: tl.constexpr,
                                 BM: tl.constexpr, BD: tl.constexpr, STORE_H: tl.constexpr):
        pid = tl.program_id(0)
        cols = tl.program_id(1) * BD + tl.arange(0, BD)
        c = cols[None, None, :]
        cmask = (cols < D)[None, None, :]
        j = tl.arange(0, NP)[:, None, None]  # targets dH*_j along axis 0
        jmask = j < N
        src = tl.arange(0, SP)[None, :, None]  # sources H_i along axis 1 of the sums
        si = tl.arange(0, SP)[:, None, None]  # the streams read, along axis 0 of a tile
        smask = si < S
        bj = tl.load(b_ptr + j, mask=jmask, other=0.0)
        rj = tl.load(r_ptr + j, mask=jmask, other=0.0)
        mix_t = tl.load(mix_ptr + src * N + j, mask=jmask & (src < S), other=0.0)  # (NP, SP, 1): mix[i, j] at [j, i]
        # the sums, per column until the end: <H_i, dH*_j> at [j, i], <out, dH*_j>, <H_i, dx> at [i], <out, dx>
        acc_hd = tl.zeros([NP, SP, BD], tl.float32)
        acc_od = tl.zeros([NP, 1, BD], tl.float32)
        acc_hx = tl.zeros([SP, 1, BD], tl.float32)
        acc_ox = tl.zeros([1, 1, BD], tl.float32)
        for it in range(0, blocks_per_program):
            rows = (pid + it * n_row_programs) * BM + tl.arange(0, BM)
            m = rows.to(tl.int64)[None, :, None]
            mask = (rows < M)[None, :, None] & cmask  # (1, BM, BD)
            # every load of the iteration before any store: with each stream loaded after the previous stream's
            # store the backward took 1.18 ms a site at best (call CE); our reading, the loads waited one by one
            dx = tl.load(dx_ptr + m * D + c, mask=mask, other=0.0).to(tl.float32)
            o = tl.load(out_ptr + m * D + c, mask=mask, other=0.0).to(tl.float32)
            Hs = tl.load(h_ptr + (m * S + si) * D + c, mask=mask & smask, other=0.0)  # (SP, BM, BD)
            dht = rj * dx  # (NP, BM, BD)
            if STORE_H:
                dht += tl.load(dh1_ptr + (m * N + j) * D + c, mask=mask & jmask, other=0.0)
            d_out = tl.sum(bj * dht, axis=0, keep_dims=True)
            acc_od += tl.sum(o * dht, axis=1, keep_dims=True)
            acc_ox += tl.sum(o * dx, axis=1, keep_dims=True)
            acc_hx += tl.sum(Hs * dx, axis=1, keep_dims=True)
            dH = tl.zeros([SP, BM, BD], tl.float32)
            for i in tl.static_range(S):
                hi = tl.sum(tl.where(si == i, Hs, 0.0), axis=0, keep_dims=True)  # stream i: within a thread
                mi = tl.sum(tl.where(src == i, mix_t, 0.0), axis=1, keep_dims=True)  # mix[i, j] along j
                dH += tl.where(si == i, tl.sum(mi * dht, axis=0, keep_dims=True), 0.0)
                acc_hd += tl.where(src == i, tl.sum(hi * dht, axis=1, keep_dims=True), 0.0)
            tl.store(dout_ptr + m * D + c, d_out.to(dout_ptr.dtype.element_ty), mask=mask)
            tl.store(dh_ptr + (m * S + si) * D + c, dH, mask=mask & smask)
        # this program's sums into its (S + 1, N + 1) slice of the partial sums: P[s, t] at s * (N + 1) + t
        base = part_ptr + (pid * tl.num_programs(1) + tl.program_id(1)) * (S + 1) * (N + 1)
        i2 = tl.arange(0, SP)[None, :]
        j2 = tl.arange(0, NP)[:, None]
        tl.store(base + i2 * (N + 1) + j2, tl.sum(acc_hd, axis=2), mask=(i2 < S) & (j2 < N))
        j1 = tl.arange(0, NP)
        tl.store(base + S * (N + 1) + j1, tl.sum(tl.sum(acc_od, axis=2), axis=1), mask=j1 < N)
        i1 = tl.arange(0, SP)
        tl.store(base + i1 * (N + 1) + N, tl.sum(tl.sum(acc_hx, axis=2), axis=1), mask=i1 < S)
        tl.store(base + S * (N + 1) + N, tl.sum(acc_ox))


def _meta(H: torch.Tensor, n: int, warps: int) -> dict:
    return dict(S=H.shape[1], N=n, NP=triton.next_power_of_2(n), BD=128 * warps, num_warps=warps)


@kernel_op("gptablate::hyper_static_step")
def _static_step_op(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                    store_h: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if not use_kernel(H):
        H1, x = static_step_reference(H, out, mix, b, r, store_h)
        return H1.contiguous(), x.contiguous()
    M, _, D = H.shape
    n = b.shape[0]
    H1 = torch.empty(M, n, D, dtype=H.dtype, device=H.device) if store_h else H.new_empty(0)
    x = torch.empty(M, D, dtype=H.dtype, device=H.device)
    tokens, warps = FWD
    meta = _meta(H, n, warps)
    grid = (triton.cdiv(M, tokens), triton.cdiv(D, meta["BD"]))
    torch.library.wrap_triton(_hyper_static_fwd_kernel)[grid](H, out, mix, b, r, H1, x, M, D, BM=tokens,
                                                              STORE_H=store_h, **meta)
    return H1, x


@kernel_op("gptablate::hyper_static_step_backward")
def _static_step_backward_op(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                             dH1: torch.Tensor, dx: torch.Tensor, store_h: bool
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not use_kernel(H):
        dH, d_out, P = static_step_backward_reference(H, out, mix, b, r, dH1, dx, store_h)
        return dH.contiguous(), d_out.contiguous(), P
    M, S, D = H.shape
    n = b.shape[0]
    per_sm, tokens, warps = BWD
    meta = _meta(H, n, warps)
    col_programs = triton.cdiv(D, meta["BD"])
    blocks = triton.cdiv(M, tokens)
    row_programs = min(blocks, max(1, per_sm * sm_count(H) // col_programs))
    dH = torch.empty_like(H)
    d_out = torch.empty(M, D, dtype=out.dtype, device=H.device)
    part = torch.empty(row_programs * col_programs, S + 1, n + 1, dtype=torch.float32, device=H.device)
    torch.library.wrap_triton(_hyper_static_bwd_kernel)[(row_programs, col_programs)](
        H, out, mix, b, r, dH1 if store_h else dx, dx, dH, d_out, part, M, D, row_programs,
        triton.cdiv(blocks, row_programs), SP=triton.next_power_of_2(S), BM=tokens, STORE_H=store_h, **meta)
    return dH, d_out, part.sum(0)


def _setup_context(ctx, inputs, output):
    H, out, mix, b, r, store_h = inputs
    ctx.save_for_backward(H, out, mix, b, r)
    ctx.store_h = store_h


def _backward(ctx, dH1, dx):
    H, out, mix, b, r = ctx.saved_tensors
    M, S, D = H.shape
    if dx is None:
        dx = torch.zeros(M, D, dtype=H.dtype, device=H.device)
    if ctx.store_h and dH1 is None:
        dH1 = torch.zeros(M, b.shape[0], D, dtype=H.dtype, device=H.device)
    dH, d_out, P = _static_step_backward_op(H, out, mix, b, r, dH1.contiguous() if ctx.store_h else dx,
                                            dx.contiguous(), ctx.store_h)
    n = b.shape[0]
    P = P.to(mix.dtype)
    d_mix = P[:S, :n]
    d_b = P[S, :n]
    d_r = mix.t() @ P[:S, n] + b * P[S, n]  # Σ H'_j dx, by linearity
    return dH, d_out, d_mix, d_b, d_r, None


_static_step_op.register_autograd(_backward, setup_context=_setup_context)


def static_step(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                store_h: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(H' (M, n, D) or an empty tensor, x (M, D)) from the streams H (M, S, D) and the site output out (M, D); see
    above. The connection weights in the streams' dtype (fp32 in training, float64 in some tests)."""
    dt = H.dtype
    with torch.autocast(H.device.type, enabled=False):
        return _static_step_op(H.contiguous(), out.contiguous(), mix.to(dt).contiguous(), b.to(dt).contiguous(),
                               r.to(dt).contiguous(), store_h)
