"""How fast the pull kernel's way of reading memory can go, apart from its arithmetic (attnres full's backward,
model/aggregate.py): S rows of a bf16 stack (S, M, D) summed into one row a token, in two layouts.

- "token": the pull's. A program takes one token at a time (a (DC, DL) tile of its features, DL = 128) and loops over
  the S rows, each a 2-byte row of D read with `tl.range`'s pipelining; programs per SM, warps and stages swept.
- "block": BM tokens at a time, a (BM, DC, DL) tile, so that a row j's read is BM consecutive tokens (BM x D x 2
  bytes in one piece) and whatever is the same for every token (u_j's row) is read once for BM tokens.

Each at levels of work a (token, row): 0, the sum alone; 1, with a sum over the features a row (x·ḡ_j) and a
scale (the pull's part without u); 2, with u_j's fp32 row loaded, its sum x·u_j and a term b u_j (the pull's whole
shape, less its stats and b stores); and, in blocks, 3: level 2 with x·u_j read from an fp32 (S, M) array of scores
(the forward's, were it to save them) in place of the sum. Against torch's own reduction (`torch.sum(stack, 0,
dtype=float32)`) and a copy of the stack, for the machine's bandwidth on this shape.

    python3 scripts/device/stream_probe.py [--shape TOKENS,WIDTH] [--rows S]

Prints a line a kernel: its time and the bytes it moved (the stack, the source row and the output) a second. The
outputs are checked against torch's for level 0 (levels 1 and 2 are probes: their values mean nothing)."""
import sys

import torch
import triton
import triton.language as tl

from addnorm_bench import timed
from hyperstep_ab import shape
from gptablate.model.aggregate import _row_sums, _sum, _tile
from gptablate.model.kernels import row_chunks, sm_count


@triton.jit(do_not_specialize=["S", "M", "n_programs", "rows_per_program"])
def _token_kernel(stack_ptr, x_ptr, u_ptr, out_ptr, S, M, D, n_programs, rows_per_program, DC: tl.constexpr,
                  DL: tl.constexpr, STAGES: tl.constexpr, WORK: tl.constexpr):
    d, dmask, _ = _tile(D, DC, DL, 1)
    MD = M.to(tl.int64) * D
    for it in range(0, rows_per_program):
        m = tl.program_id(0) + it * n_programs
        if m < M:
            off = m.to(tl.int64) * D + d
            x = tl.load(x_ptr + off, mask=dmask, other=0.0).to(tl.float32)
            acc = tl.zeros([DC, DL], tl.float32)
            for j in tl.range(0, S, num_stages=STAGES):
                g = tl.load(stack_ptr + j * MD + off, mask=dmask, other=0.0).to(tl.float32)
                if WORK == 0:
                    acc += g
                else:
                    p = tl.exp(_sum(x * g) * 1e-3)
                    acc += p * g
                    if WORK == 2:
                        uj = tl.load(u_ptr + j * D + d, mask=dmask, other=0.0)
                        acc += _sum(x * uj) * uj
            tl.store(out_ptr + off, acc.to(out_ptr.dtype.element_ty), mask=dmask)


@triton.jit(do_not_specialize=["S", "M", "n_programs", "blocks_per_program"])
def _block_kernel(stack_ptr, x_ptr, u_ptr, sc_ptr, out_ptr, S, M, D, n_programs, blocks_per_program, BM: tl.constexpr,
                  DC: tl.constexpr, DL: tl.constexpr, STAGES: tl.constexpr, WORK: tl.constexpr):
    d, dmask, _ = _tile(D, DC, DL, 1)
    MD = M.to(tl.int64) * D
    for it in range(0, blocks_per_program):
        m = (tl.program_id(0) + it * n_programs) * BM + tl.arange(0, BM)
        mask = (m < M)[:, None, None] & dmask[None]
        off = m.to(tl.int64)[:, None, None] * D + d[None]
        x = tl.load(x_ptr + off, mask=mask, other=0.0).to(tl.float32)
        acc = tl.zeros([BM, DC, DL], tl.float32)
        for j in tl.range(0, S, num_stages=STAGES):
            g = tl.load(stack_ptr + j * MD + off, mask=mask, other=0.0).to(tl.float32)
            if WORK == 0:
                acc += g
            else:
                p = tl.exp(_row_sums(x * g) * 1e-3)
                acc += p[:, None, None] * g
                if WORK >= 2:
                    uj = tl.load(u_ptr + j * D + d, mask=dmask, other=0.0)[None]
                    if WORK == 2:
                        acc += _row_sums(x * uj)[:, None, None] * uj
                    else:
                        acc += tl.load(sc_ptr + j * M + m, mask=m < M, other=0.0)[:, None, None] * uj
        tl.store(out_ptr + off, acc.to(out_ptr.dtype.element_ty), mask=mask)


def run_token(stack, x, U, out, per_sm, warps, stages, work):
    S, M, D = stack.shape
    n = min(M, per_sm * sm_count(stack))
    DC, DL = row_chunks(D)
    _token_kernel[(n,)](stack, x, U, out, S, M, D, n, triton.cdiv(M, n), DC=DC, DL=DL,
                        STAGES=stages, WORK=work, num_warps=warps)


def run_block(stack, x, U, sc, out, per_sm, warps, stages, work, bm):
    S, M, D = stack.shape
    blocks = triton.cdiv(M, bm)
    n = min(blocks, per_sm * sm_count(stack))
    DC, DL = row_chunks(D)
    _block_kernel[(n,)](stack, x, U, sc, out, S, M, D, n, triton.cdiv(blocks, n), BM=bm, DC=DC, DL=DL,
                        STAGES=stages, WORK=work, num_warps=warps)


def main() -> None:
    M, D = shape(sys.argv)
    S = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 24
    torch.manual_seed(0)
    stack = torch.randn(S, M, D, device="cuda").to(torch.bfloat16)
    x = torch.randn(M, D, device="cuda").to(torch.bfloat16)
    U = torch.randn(S, D, device="cuda") * 0.01
    sc = torch.randn(S, M, device="cuda")
    out = torch.empty(M, D, device="cuda", dtype=torch.bfloat16)
    moved = (S + 2) * M * D * 2
    want = torch.sum(stack, 0, dtype=torch.float32)
    ms = timed(lambda: torch.sum(stack, 0, dtype=torch.float32))
    print(f"torch.sum over {S} rows of {M} x {D}: {ms:.3f} ms, {(S + 4) * M * D * 2 / ms / 1e9:.2f} TB/s", flush=True)
    ms = timed(lambda: stack.clone())
    print(f"copy of the stack: {ms:.3f} ms, {2 * S * M * D * 2 / ms / 1e9:.2f} TB/s", flush=True)

    def report(label, fn, work):
        try:
            fn()
            torch.cuda.synchronize()
            ms = timed(fn)
        except Exception as e:  # noqa: BLE001 - a shape the compiler refuses is reported, not fatal
            print(f"{label}: failed: {' | '.join(str(e).splitlines()[-3:])[:300]}", flush=True)
            return
        check = ""
        if work == 0:
            err = ((out.float() - want).abs().max() / want.abs().max()).item()
            check = f"; largest difference from torch's {err:.1e}"
        print(f"{label}: {ms:.3f} ms, {moved / ms / 1e9:.2f} TB/s{check}", flush=True)

    for work in (0, 1, 2, 3):
        for per_sm, warps, stages in ((16, 1, 3), (8, 1, 3), (32, 1, 2), (16, 1, 2), (16, 1, 4), (8, 2, 3),
                                      (8, 1, 4), (4, 4, 3)) if work < 3 else ():  # level 3: blocks only
            report(f"token, work {work}, {per_sm} programs an SM, {warps} warps, {stages} stages",
                   lambda: run_token(stack, x, U, out, per_sm, warps, stages, work), work)
        for bm, warps in ((2, 2), (4, 4), (4, 2), (8, 4), (8, 8), (16, 8)):
            for per_sm, stages in ((1, 3), (2, 3), (4, 2), (4, 3), (2, 4)):
                if per_sm * warps > 32:
                    continue
                report(f"block of {bm}, work {work}, {per_sm} programs an SM, {warps} warps, {stages} stages",
                       lambda: run_block(stack, x, U, sc, out, per_sm, warps, stages, work, bm), work)


if __name__ == "__main__":
    main()
