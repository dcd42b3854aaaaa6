"""Times the q/k/v gradient join (model/qkvproj.py) at the 124M step's attention (61,440 x 768, bf16) in
several shapes, against inductor's code for the same function (the concatenation and the bias's column sum).

    python3 scripts/device/qkvjoin_bench.py [--write-best]

Rows: programs per SM, rows a tile, columns a tile, warps; each checked against torch. --write-best sets the
fastest shape in gptablate/model/qkvproj.py (for the rest of a device call).
"""
import re
import sys

import torch
import triton

from addnorm_bench import timed
from gptablate.model import qkvproj as QP


def main() -> None:
    M, C = 61440, 768
    torch.manual_seed(0)
    grads = [torch.randn(M, C, device="cuda").to(torch.bfloat16) for _ in range(3)]
    want = torch.cat(grads, dim=1)
    want_sum = want.float().sum(0)
    moved = M * C * 3 * 2 * 2  # read the three, write the joined
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    best = None
    for per_sm in (2, 4, 8, 16):
        for rows, block_c, warps in ((8, 256, 4), (4, 256, 2), (16, 256, 4), (8, 256, 8), (4, 256, 1), (8, 128, 4),
                                     (2, 256, 1)):
            out = torch.empty(M, 3 * C, device="cuda", dtype=torch.bfloat16)
            programs = min(triton.cdiv(M, rows), per_sm * sms)
            part = torch.empty(programs, 3 * C, device="cuda")

            def run():
                QP._qkv_join_kernel[(programs, triton.cdiv(C, block_c))](
                    *grads, out, part, M, programs, triton.cdiv(triton.cdiv(M, rows), programs), C=C, SUM=True,
                    ROWS=rows, BLOCK_C=block_c, num_warps=warps)
            ms = timed(run)
            ok = torch.equal(out, want) and torch.allclose(part.sum(0), want_sum, rtol=1e-4, atol=1e-2)
            print(f"programs/SM {per_sm} rows {rows} columns {block_c} warps {warps}: {ms:.3f} ms, "
                  f"{moved / ms / 1e9:.2f} TB/s, matches: {ok}", flush=True)
            if ok and (best is None or ms < best[0]):
                best = (ms, per_sm, rows, block_c, warps)
    print(f"fastest: {best}")

    @torch.compile
    def plain(dq, dk, dv):
        joined = torch.cat((dq, dk, dv), dim=1)
        return joined, joined.sum(0)
    print(f"inductor's concatenation and column sum: {timed(lambda: plain(*grads)):.3f} ms; "
          f"the join op with the fastest shape: ", end="")
    QP.JOIN_PER_SM, QP.JOIN_ROWS, QP.JOIN_BLOCK_C, QP.JOIN_WARPS = best[1:]
    print(f"{timed(lambda: QP._qkv_join_op(*grads, True)):.3f} ms (the partial sums' sum included)", flush=True)
    if "--write-best" in sys.argv:
        path = QP.__file__
        text = open(path).read()
        text, n = re.subn(r"^JOIN_PER_SM, JOIN_ROWS, JOIN_BLOCK_C, JOIN_WARPS = .*$",
                          "JOIN_PER_SM, JOIN_ROWS, JOIN_BLOCK_C, JOIN_WARPS = {}, {}, {}, {}".format(*best[1:]), text,
                          flags=re.M)
        assert n == 1
        open(path, "w").write(text)
        print("written to", path)


if __name__ == "__main__":
    main()
