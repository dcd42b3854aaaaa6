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

With the next site's norm (LayerNorm or RMSNorm: weight not empty) the forward also writes h = N(x) in the autocast
dtype, the matmul's input, and the per-token mean and 1/std: a program holds whole rows (one column block, D
rounded up to a power of two). x is still written, for the backward's row sums only. The backward then takes dh
for dx: a row kernel first sums a = Σ w·dh·x̂ / D and c = Σ w·dh / D for every token; the column programs, which
recompute x from the streams and out they load anyway, form dx = rstd·(w·dh - x̂·a - c) per element and add the
norm's gain and bias gradients (Σ dh·x̂, Σ dh per column) to their sums. So the sites' norms read no stream of their
own (inductor's three LayerNorm kernels took 8.4 ms of the 124M step, call CF).

On CUDA with Triton, the kernels; elsewhere (and for float64) the same computation in torch
(`static_step_reference`, `static_step_backward_reference`, with addnorm.py's norm rules), which the tests hold to
autograd.
"""

from __future__ import annotations

import torch

from .addnorm import add_norm_backward_reference, add_norm_reference
from .kernels import autocast_dtype, empties, kernel_op, sm_count, tl, triton, use_kernel

# (tokens a program, warps) of the forward; (programs per SM, tokens an iteration, warps) of the backward. A
# program's columns are 128 x warps (a warp's 32 lanes x 4), so the streams and tokens of a tile lie within a
# thread and its sums over them need no other thread. The fastest of scripts/device/hyperstatic_bench.py's sweep on
# the 124M step's streams (61,440 x 4 x 768, one H100, call CF): forward 0.616 ms (2.9 TB/s), backward 0.920 ms
# (2.9 TB/s), where hyperstep.py's token-row kernels took 0.626 and 1.295 ms for the same site; 7 of the 27
# backward shapes were within 2% of the best.
FWD = (1, 8)
BWD = (4, 2, 2)
# With the next site's norm folded in: (tokens a program, warps) of the forward, whose program holds whole rows;
# (rows a program, warps) of the backward's row sums; the backward's shape as BWD. The fastest of the sweep's
# --norm-only part at the same site (call CJ): forward 0.827 ms, backward with the row sums 1.06-1.16 ms, where the
# step without the norm and inductor's LayerNorm forward and backward took 1.81 + 0.80 ms; shapes within 5% of each
# other were many, and repeated sweeps differ by about that much.
FWD_NORM = (1, 4)
ROW_SUMS = (2, 2)
BWD_NORM = (4, 1, 4)


def static_step_reference(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                          store_h: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(H' or an empty tensor, x) in torch; differentiable, the tests' oracle."""
    H1 = (mix[None, :, :, None] * H[:, :, None, :]).sum(1) + b[None, :, None] * out[:, None, :].to(H.dtype)
    x = (r[None, :, None] * H1).sum(1)
    return (H1 if store_h else H1.new_zeros(0)), x


def static_step_backward_reference(H, out, mix, b, r, dH1, dx, store_h: bool, norm=None):
    """(dH, d_out, P) by the hand-written rule the backward kernel follows. With norm = (x, mean, rstd, weight,
    center), dx is the gradient of h = N(x) and the result (dH, d_out, P, the norm's sums (2, D): its gain's and
    bias's gradients)."""
    if norm is not None:
        x, mean, rstd, weight, center = norm
        dx, _, d_weight, d_bias, _ = add_norm_backward_reference(x, mean, rstd, weight, None, dx, False, center, None)
        return (*static_step_backward_reference(H, out, mix, b, r, dH1, dx, store_h), torch.stack((d_weight, d_bias)))
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
    def _hyper_static_fwd_kernel(h_ptr, out_ptr, mix_ptr, b_ptr, r_ptr, h1_ptr, x_ptr, w_ptr, nb_ptr, hn_ptr, mean_ptr,
                                 rstd_ptr, M, D, eps, S: tl.constexpr, N: tl.constexpr, NP: tl.constexpr,
                                 BM: tl.constexpr, BD: tl.constexpr, STORE_H: tl.constexpr, NORM: tl.constexpr,
                                 CENTER: tl.constexpr, HAS_BIAS: tl.constexpr):
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
        if NORM:  # the next site's norm over the whole row, which this program holds (one column block)
            if CENTER:
                mean = tl.sum(x, axis=2, keep_dims=True) / D
                xc = tl.where(mask, x - mean, 0.0)
            else:
                mean = tl.zeros([1, BM, 1], tl.float32)
                xc = x
            rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=2, keep_dims=True) / D + eps)
            hn = xc * rstd * tl.load(w_ptr + c, mask=c < D, other=0.0)
            if HAS_BIAS:
                hn += tl.load(nb_ptr + c, mask=c < D, other=0.0)
            tl.store(hn_ptr + m * D + c, hn.to(hn_ptr.dtype.element_ty), mask=mask)
            rmask = (rows < M)[None, :, None]
            tl.store(mean_ptr + m, mean, mask=rmask)
            tl.store(rstd_ptr + m, rstd, mask=rmask)

    @triton.jit
    def _norm_row_sums_kernel(x_ptr, dh_ptr, w_ptr, mean_ptr, rstd_ptr, sums_ptr, M, D, CENTER: tl.constexpr,
                              ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
        """The norm backward's two sums over each row: Σ g·x̂ / D and Σ g / D, g = w·dh (the second 0: RMSNorm)."""
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        cols = tl.arange(0, BLOCK_D)
        rmask = rows < M
        mask = rmask[:, None] & (cols < D)[None, :]
        offs = rows.to(tl.int64)[:, None] * D + cols[None, :]
        mean = tl.load(mean_ptr + rows, mask=rmask, other=0.0)
        rstd = tl.load(rstd_ptr + rows, mask=rmask, other=0.0)
        xhat = tl.where(mask, (tl.load(x_ptr + offs, mask=mask, other=0.0) - mean[:, None]) * rstd[:, None], 0.0)
        g = tl.load(dh_ptr + offs, mask=mask, other=0.0).to(tl.float32) * tl.load(w_ptr + cols, mask=cols < D,
                                                                                    other=0.0)[None, :]
        tl.store(sums_ptr + rows * 2, tl.sum(g * xhat, axis=1) / D, mask=rmask)
        if CENTER:
            tl.store(sums_ptr + rows * 2 + 1, tl.sum(g, axis=1) / D, mask=rmask)
        else:
            tl.store(sums_ptr + rows * 2 + 1, tl.zeros([ROWS], tl.float32), mask=rmask)

    @triton.jit
    def _hyper_static_bwd_kernel(h_ptr, out_ptr, mix_ptr, b_ptr, r_ptr, dh1_ptr, dx_ptr, w_ptr, mean_ptr, rstd_ptr,
                                 sums_ptr, dh_ptr, dout_ptr, part_ptr, wpart_ptr, M, D, n_row_programs,
                                 blocks_per_program, S: tl.constexpr, N: tl.constexpr, NP: tl.constexpr,
                                 SP: tl.constexpr, BM: tl.constexpr, BD: tl.constexpr, STORE_H: tl.constexpr,
                                 NORM: tl.constexpr):
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
        # with the norm: its gain's and bias's gradients, Σ dh·x̂ and Σ dh per column
        if NORM:
            w = tl.load(w_ptr + c, mask=cmask, other=0.0)
        else:
            w = tl.zeros([1, 1, BD], tl.float32)
        acc_dw = tl.zeros([1, 1, BD], tl.float32)
        acc_db = tl.zeros([1, 1, BD], tl.float32)
        for it in range(0, blocks_per_program):
            rows = (pid + it * n_row_programs) * BM + tl.arange(0, BM)
            m = rows.to(tl.int64)[None, :, None]
            rmask = (rows < M)[None, :, None]
            mask = rmask & cmask  # (1, BM, BD)
            # every load of the iteration before any store: with each stream loaded after the previous stream's
            # store the backward took 1.18 ms a site at best (call CE); our reading, the loads waited one by one
            g = tl.load(dx_ptr + m * D + c, mask=mask, other=0.0).to(tl.float32)  # dx, or with the norm dh
            o = tl.load(out_ptr + m * D + c, mask=mask, other=0.0).to(tl.float32)
            Hs = tl.load(h_ptr + (m * S + si) * D + c, mask=mask & smask, other=0.0)  # (SP, BM, BD)
            if NORM:
                mean = tl.load(mean_ptr + m, mask=rmask, other=0.0)
                rstd = tl.load(rstd_ptr + m, mask=rmask, other=0.0)
                sum_a = tl.load(sums_ptr + m * 2, mask=rmask, other=0.0)
                sum_c = tl.load(sums_ptr + m * 2 + 1, mask=rmask, other=0.0)
                # x again from the loaded streams, as the forward summed it: x = Σ_j r_j (b_j out + Σ_i mix[i, j] H_i)
                h1 = bj * o
                for i in tl.static_range(S):
                    hi = tl.sum(tl.where(si == i, Hs, 0.0), axis=0, keep_dims=True)
                    h1 += tl.sum(tl.where(src == i, mix_t, 0.0), axis=1, keep_dims=True) * hi
                xhat = (tl.sum(rj * h1, axis=0, keep_dims=True) - mean) * rstd
                dx = tl.where(mask, (g * w - xhat * sum_a - sum_c) * rstd, 0.0)
                acc_dw += tl.sum(g * xhat, axis=1, keep_dims=True)
                acc_db += tl.sum(g, axis=1, keep_dims=True)
            else:
                dx = g
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
        if NORM:  # and its columns of the norm's sums: (programs along the tokens, 2, D)
            wbase = wpart_ptr + pid * 2 * D + cols
            tl.store(wbase, tl.sum(tl.sum(acc_dw, axis=0), axis=0), mask=cols < D)
            tl.store(wbase + D, tl.sum(tl.sum(acc_db, axis=0), axis=0), mask=cols < D)


def _meta(H: torch.Tensor, n: int, warps: int) -> dict:
    return dict(S=H.shape[1], N=n, NP=triton.next_power_of_2(n), BD=128 * warps, num_warps=warps)


@kernel_op("gptablate::hyper_static_step")
def _static_step_op(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                    weight: torch.Tensor, bias: torch.Tensor, eps: float, center: bool, h_dtype: torch.dtype,
                    store_h: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(H' or empty, x, and with a norm (weight not empty) h, mean, rstd; else three empty tensors)."""
    norm = weight.numel() > 0
    if not use_kernel(H):
        H1, x = static_step_reference(H, out, mix, b, r, store_h)
        if not norm:
            return H1.contiguous(), x.contiguous(), *empties(H, 3)
        _, h, mean, rstd = add_norm_reference(x, None, None, weight, bias, eps, False, center, h_dtype)
        return H1.contiguous(), x.contiguous(), h.contiguous(), mean, rstd
    M, _, D = H.shape
    n = b.shape[0]
    H1 = torch.empty(M, n, D, dtype=H.dtype, device=H.device) if store_h else H.new_empty(0)
    x = torch.empty(M, D, dtype=H.dtype, device=H.device)
    if norm:  # a program holds whole rows: one column block of D rounded up to a power of two
        tokens, warps = FWD_NORM
        meta = dict(_meta(H, n, warps), BD=triton.next_power_of_2(D))
        h, mean, rstd = torch.empty(M, D, dtype=h_dtype, device=H.device), H.new_empty(M), H.new_empty(M)
    else:
        tokens, warps = FWD
        meta = _meta(H, n, warps)
        h, mean, rstd = empties(H, 3)
    grid = (triton.cdiv(M, tokens), triton.cdiv(D, meta["BD"]))
    torch.library.wrap_triton(_hyper_static_fwd_kernel)[grid](
        H, out, mix, b, r, H1, x, weight, bias, h, mean, rstd, M, D, eps, BM=tokens, STORE_H=store_h, NORM=norm,
        CENTER=center, HAS_BIAS=bias.numel() > 0, **meta)
    return H1, x, h, mean, rstd


@kernel_op("gptablate::hyper_static_step_backward")
def _static_step_backward_op(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                             dH1: torch.Tensor, g: torch.Tensor, x: torch.Tensor, mean: torch.Tensor,
                             rstd: torch.Tensor, weight: torch.Tensor, center: bool, store_h: bool
                             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dH, d_out, P, and with a norm its gain's and bias's gradients (2, D), else empty). g: the gradient of x, or
    with a norm (weight not empty) of h."""
    norm = weight.numel() > 0
    if not use_kernel(H):
        dH, d_out, P, *sums = static_step_backward_reference(H, out, mix, b, r, dH1, g, store_h,
                                                             (x, mean, rstd, weight, center) if norm else None)
        return dH.contiguous(), d_out.contiguous(), P, sums[0] if norm else H.new_zeros(0)
    M, S, D = H.shape
    n = b.shape[0]
    empty = H.new_zeros(0)
    if norm:  # the norm backward's two sums over each row first; the column programs need them for every token
        rows, row_warps = ROW_SUMS
        row_sums = H.new_empty(M, 2)
        torch.library.wrap_triton(_norm_row_sums_kernel)[(triton.cdiv(M, rows),)](
            x, g, weight, mean, rstd, row_sums, M, D, CENTER=center, ROWS=rows, BLOCK_D=triton.next_power_of_2(D),
            num_warps=row_warps)
    else:
        row_sums = empty
    per_sm, tokens, warps = BWD_NORM if norm else BWD
    meta = _meta(H, n, warps)
    col_programs = triton.cdiv(D, meta["BD"])
    blocks = triton.cdiv(M, tokens)
    row_programs = min(blocks, max(1, per_sm * sm_count(H) // col_programs))
    dH = torch.empty_like(H)
    d_out = torch.empty(M, D, dtype=out.dtype, device=H.device)
    part = torch.empty(row_programs * col_programs, S + 1, n + 1, dtype=torch.float32, device=H.device)
    wpart = H.new_empty(row_programs, 2, D) if norm else empty
    torch.library.wrap_triton(_hyper_static_bwd_kernel)[(row_programs, col_programs)](
        H, out, mix, b, r, dH1 if store_h else g, g, weight, mean, rstd, row_sums, dH, d_out, part, wpart, M, D,
        row_programs, triton.cdiv(blocks, row_programs), SP=triton.next_power_of_2(S), BM=tokens, STORE_H=store_h,
        NORM=norm, **meta)
    return dH, d_out, part.sum(0), wpart.sum(0) if norm else empty


def _setup_context(ctx, inputs, output):
    H, out, mix, b, r, weight, bias, eps, center, h_dtype, store_h = inputs
    _, x, _, mean, rstd = output
    ctx.norm = weight.numel() > 0
    ctx.save_for_backward(H, out, mix, b, r, x if ctx.norm else None, mean, rstd, weight)
    ctx.flags = (center, h_dtype, store_h, bias.numel() > 0)
    ctx.mark_non_differentiable(*((x, mean, rstd) if ctx.norm else (mean, rstd)))


def _backward(ctx, dH1, dx, dh, _dmean, _drstd):
    H, out, mix, b, r, x, mean, rstd, weight = ctx.saved_tensors
    center, h_dtype, store_h, has_bias = ctx.flags
    M, S, D = H.shape
    n = b.shape[0]
    if ctx.norm:  # x is not differentiable here: h is its only way on
        g = torch.zeros(M, D, dtype=h_dtype, device=H.device) if dh is None else dh.contiguous()
    else:
        g = torch.zeros(M, D, dtype=H.dtype, device=H.device) if dx is None else dx.contiguous()
    if store_h and dH1 is None:
        dH1 = torch.zeros(M, n, D, dtype=H.dtype, device=H.device)
    empty = H.new_zeros(0)
    dH, d_out, P, sums = _static_step_backward_op(H, out, mix, b, r, dH1.contiguous() if store_h else empty, g,
                                                  x if ctx.norm else empty, mean, rstd, weight, center, store_h)
    P = P.to(mix.dtype)
    d_mix = P[:S, :n]
    d_b = P[S, :n]
    d_r = mix.t() @ P[:S, n] + b * P[S, n]  # Σ H'_j dx, by linearity
    d_weight, d_bias = (sums[0], sums[1] if has_bias else None) if ctx.norm else (None, None)
    return dH, d_out, d_mix, d_b, d_r, d_weight, d_bias, None, None, None, None


_static_step_op.register_autograd(_backward, setup_context=_setup_context)


def static_step(H: torch.Tensor, out: torch.Tensor, mix: torch.Tensor, b: torch.Tensor, r: torch.Tensor,
                store_h: bool, norm: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(H' (M, n, D) or an empty tensor, x (M, D)) from the streams H (M, S, D) and the site output out (M, D); see
    above. The connection weights in the streams' dtype (fp32 in training, float64 in some tests). With `norm`,
    (weight, bias or None, center) of the next site's LayerNorm (center) or RMSNorm: (H', h) instead, h = N(x) in
    the autocast dtype (x's own without autocast), as the sublayer's matmul reads it."""
    dt = H.dtype
    h_dtype = autocast_dtype(H)
    empty = H.new_zeros(0)
    weight, bias, center = norm if norm is not None else (empty, None, False)
    with torch.autocast(H.device.type, enabled=False):
        H1, x, h, _, _ = _static_step_op(H.contiguous(), out.contiguous(), mix.to(dt).contiguous(),
                                         b.to(dt).contiguous(), r.to(dt).contiguous(), weight.to(dt),
                                         bias.to(dt) if bias is not None else empty, 1e-5, center, h_dtype, store_h)
    return (H1, h) if norm is not None else (H1, x)
