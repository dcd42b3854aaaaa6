#!/usr/bin/env bash
# Device call DL (one H100): call DK's one mismatch, aggregate's backward at 1,600 features with 8 programs an SM of 4
# warps (what the code before launched there), repeated against the torch reference at both widths and its neighbours
# (which output, by how much); then hyper and attnres at 1.5B's width in the step, 12 of its layers on one GPU (a
# micro-step of 16 sequences), with the row kernels' warps scaled (the working tree) and as before (.dev/ab/head's
# kernels.py, hyperstep.py and aggregate.py put in place for the second run).
source "$(dirname "$0")/common.sh" dl
timeout -k 5 120 python3 - <<'PY' 2>&1 | grep -vi warn | cut -c1-300
import sys
import torch
sys.path.insert(0, "scripts/device")
from aggregate_bench import backward_matches
from gptablate.model import aggregate as AG
from gptablate.model.kernels import row_warps
for M, D in ((16384, 1600), (61440, 768)):
    torch.manual_seed(0)
    K = 5
    sources = [torch.randn(M, D, device="cuda") * 2] + [
        (torch.randn(M, D, device="cuda") * 3).to(torch.bfloat16) for _ in range(K - 1)]
    u = torch.randn(D, device="cuda") * 0.3
    dout = torch.randn(M, D, device="cuda")
    want = AG.aggregate_backward_reference(sources, u, dout, 1e-5)
    for per_sm, warps in ((8, 2), (8, 4), (4, 2), (16, 2), (8, 1)):
        AG.AGG_BWD = (per_sm, warps)
        results = [AG._aggregate_backward_op(sources, u, dout, 1e-5) for _ in range(4)]
        same = all(torch.equal(a, b) for r in results[1:] for a, b in zip(r, results[0]))
        verdicts = [backward_matches(r, want) for r in results]
        print(f"{M}x{D} programs/SM {per_sm} warps {warps} (launched with {row_warps(warps, D)}): four runs "
              f"{'bit-identical' if same else 'DIFFER'}; {' | '.join(dict.fromkeys(verdicts))}", flush=True)
PY
echo "[t=$((SECONDS-T0))s]"
bench() {
  timeout -k 5 $1 gptablate bench gpt2_1.5b --steps 8 --all-variants --variant residual=hyper --variant residual=attnres \
      --set model.n_layer=12 --set train.batch_size=16 --json $OUT/dl_$2.json > $OUT/dl_$2.txt 2>&1; echo "bench rc=$?"
  tail -4 $OUT/dl_$2.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
}
bench 280 scaled
for f in kernels hyperstep aggregate; do cp .dev/ab/head/$f.py gptablate/model/$f.py; done
bench $((585 - SECONDS + T0)) head
