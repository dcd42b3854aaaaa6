"""What the compiler makes of a Triton kernel, without a GPU: registers, stack, barriers, instructions, layout changes.

    PYTHONPATH=<a Triton install> python3 scripts/kernel_resources.py KERNEL [--warps N] [--maxnreg N] [--stages N]
        [--set NAME=VALUE ...] [--streams fp32|bf16] [--sass FILE] [--ttgir FILE]

KERNEL is one of hyper_fwd, hyper_bwd (model/hyperstep.py, the dynamic site with its LayerNorm folded in), hyper_wgrad
(its projection's weight gradient), hyper_wgrad_dot (the same for bf16 streams, on the tensor cores), static_fwd,
static_bwd (model/hyperstatic.py, with the norm), mhc_fwd, mhc_bwd
(model/mhcstep.py), each at the 124M step's shape (4 streams of 768 features), or agg_many_fwd, agg_many_bwd
(model/aggregate.py's kernels past AGG_HOLD sources, the table's sources bf16, 768 features; the forward with a
LayerNorm in its epilogue and the scores saved), agg_pull_block (its pull kernel, attnres full's backward: a bf16 source
and stack, site k's row from the stack, blocks of tokens) and agg_norm_bwd (the folded norms' backward), at the
committed tuning unless given. Triton compiles for sm_90 without a GPU (the CPU install of torch has no Triton: put the
folder `scripts/install.sh --test` fills for the interpreter tests, ~/.cache/gptablate/triton-interpreter, on
PYTHONPATH; TRITON_DEFAULT_FP_FUSION=1 as Triton 3.9 defaults to); the launch's divisibility hints (pointers and the row
counts and widths divisible by 16) are given as a launch on the 124M shapes would, since without them the compiler picks
other layouts. Then `cuobjdump` from Triton's wheel reads the cubin. Prints the registers and stack a thread, the
barriers and SASS instructions (the kernel as written, not per token), the most frequent opcodes, and each layout
conversion of the Triton GPU IR (a tile moved between threads; a large one goes through shared memory).
docs/performance.md, "Hyper-Connections: what the kernels spend a token on", used it.
"""
import argparse
import collections
import re
import subprocess
import tempfile
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from gptablate.model import aggregate, hyperstatic, hyperstep, mhcstep
from gptablate.model.kernels import by_width

MHC = mhcstep.tuning(768)  # mhc_step's (forward, backward) shapes at the 124M width
MANY = by_width(aggregate.AGG_MANY, 768)  # aggregate's many kernels' (forward, backward) tuning at the 124M width
PULL = by_width(aggregate.AGG_PULL, 768)  # its pull kernel's
NORM = by_width(aggregate.AGG_NORM, 768)  # its folded norms' backward's
# (kernel, the constexprs, the 2-byte pointers, warps, register cap, stages) at the committed tuning
KERNELS = {
    "hyper_fwd": (lambda: hyperstep._hyper_fwd_kernel, dict(
        N=4, NP=4, J=6, DL=128, SP=8, HAS_WRITE=True, DYNAMIC=True, CENTER=True, NORM=True, HAS_BIAS=True,
        FWD_STAGES=hyperstep.STAGES[0], ONE_PASS=False), {"out_ptr", "y_ptr"}, *hyperstep.TUNING["norm"][1], 1),
    "hyper_bwd": (lambda: hyperstep._hyper_bwd_kernel, dict(
        N=4, NP=4, J=6, DL=128, SP=8, HAS_WRITE=True, DYNAMIC=True, CENTER=True, NORM=True,
        BWD_STAGES=hyperstep.STAGES[1]), {"out_ptr", "dx_ptr", "dout_ptr"}, *hyperstep.TUNING["norm"][2], 1),
    "hyper_wgrad": (lambda: hyperstep._hyper_wgrad_kernel, dict(
        J=6, JP=8, BR=hyperstep.WGRAD[1], BD=hyperstep.WGRAD[2], STAGES=hyperstep.WGRAD[4]), set(),
        hyperstep.WGRAD[3], None, hyperstep.WGRAD[4]),
    "hyper_wgrad_dot": (lambda: hyperstep._hyper_wgrad_dot_kernel, dict(
        K=16, BR=hyperstep.WGRAD_DOT[1], BD=hyperstep.WGRAD_DOT[2], STAGES=hyperstep.WGRAD_DOT[4]),
        {"h1_ptr", "a_ptr"}, hyperstep.WGRAD_DOT[3], None, hyperstep.WGRAD_DOT[4]),
    "static_fwd": (lambda: hyperstatic._hyper_static_fwd_kernel, dict(
        S=4, N=4, NP=4, BM=hyperstatic.FWD_NORM[0], BD=1024, STORE_H=True, NORM=True, CENTER=True, HAS_BIAS=True),
        {"out_ptr", "hn_ptr"}, hyperstatic.FWD_NORM[1], None, 1),
    "static_bwd": (lambda: hyperstatic._hyper_static_bwd_kernel, dict(
        S=4, N=4, NP=4, SP=8, BM=hyperstatic.BWD_NORM[1], BD=128 * hyperstatic.BWD_NORM[2], STORE_H=True, NORM=True),
        {"out_ptr", "dout_ptr", "dx_ptr"}, hyperstatic.BWD_NORM[2], None, 1),
    "mhc_fwd": (lambda: mhcstep._mhc_fwd_kernel, dict(
        N=4, J=24, JP=32, BM=MHC[0][0], BK=MHC[0][1], HAS_WRITE=True, STAGES=MHC[0][3]), {"out_ptr"},
        MHC[0][2], MHC[0][4], MHC[0][3]),
    "mhc_bwd": (lambda: mhcstep._mhc_bwd_kernel, dict(
        N=4, J=24, JP=32, BM=MHC[1][0], BK=MHC[1][1], HAS_WRITE=True, STAGES=MHC[1][3]),
        {"out_ptr", "dout_ptr", "dx_ptr"}, MHC[1][2], MHC[1][4], MHC[1][3]),
    "agg_many_fwd": (lambda: aggregate._agg_many_fwd_kernel, dict(G=aggregate.AGG_GROUP, DC=8, DL=128, ALIGNED=True,
                     STAGES=MANY[0][2], NORM=True, CENTER=True, HAS_BIAS=True, SCORES=True), {"base_ptr", "y_ptr"},
                     MANY[0][1], None, MANY[0][2]),
    "agg_many_bwd": (lambda: aggregate._agg_many_bwd_kernel, dict(G=aggregate.AGG_GROUP, DC=8, DL=128, ALIGNED=True,
                     STAGES=MANY[1][2]), {"base_ptr", "dbase_ptr"}, MANY[1][1], None, MANY[1][2]),
    "agg_pull_block": (lambda: aggregate._agg_pull_block_kernel, dict(BM=PULL[3], DC=8, DL=128, STAGES=PULL[2],
                       ROW_SET=True), {"v_ptr", "dv_ptr", "g_ptr", "stack_ptr"}, PULL[1], None, PULL[2]),
    "agg_norm_bwd": (lambda: aggregate._agg_norm_bwd_kernel, dict(DC=8, DL=128, CENTER=True, STAGES=NORM[2]),
                     {"dy_ptr", "stack_ptr"}, NORM[1], None, NORM[2]),
}
DIVISIBLE = {"M", "D", "n_programs", "tokens_per_program"}  # 61,440 tokens, 768 features, 3,840 programs, 16 tokens


def compile_kernel(fn, constexprs: dict, two_byte: set, warps: int, maxnreg, stages: int):
    signature = {}
    for name in fn.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = "*bf16" if name in two_byte else "*fp32"
        elif name == "table":  # aggregate.py's many kernels: the sources' offsets
            signature[name] = "*i64"
        else:
            signature[name] = "fp32" if name == "eps" else "i32"
    loose = {fn.arg_names[i] if isinstance(i, int) else i for i in getattr(fn, "do_not_specialize", ())}
    attrs = {(i,): [["tt.divisibility", 16]] for i, (name, kind) in enumerate(signature.items())
             if kind.startswith("*") or (kind == "i32" and name in DIVISIBLE and name not in loose)}
    options = dict(num_warps=warps, num_stages=stages, **({"maxnreg": maxnreg} if maxnreg else {}))
    source = ASTSource(fn=fn, signature=signature, constexprs={k: v for k, v in constexprs.items()
                                                               if k in signature}, attrs=attrs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 128), options=options)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kernel", choices=sorted(KERNELS))
    parser.add_argument("--warps", type=int)
    parser.add_argument("--maxnreg", type=int)
    parser.add_argument("--stages", type=int)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a constexpr (an int, or true/false)")
    parser.add_argument("--streams", choices=("fp32", "bf16"), default="fp32",
                        help="hyper_fwd, hyper_bwd: the streams' dtype (bf16: arch.hyper.stream_dtype, and the "
                        "forward's one-pass statistics)")
    parser.add_argument("--sass", type=Path, help="write the SASS here")
    parser.add_argument("--ttgir", type=Path, help="write the Triton GPU IR here")
    args = parser.parse_args()
    get, constexprs, two_byte, warps, maxnreg, stages = KERNELS[args.kernel]
    for item in args.set:
        name, value = item.split("=", 1)
        constexprs[name] = {"true": True, "false": False}.get(value.lower(), None)
        if constexprs[name] is None:
            constexprs[name] = int(value)
    warps = args.warps or warps
    maxnreg = args.maxnreg or maxnreg
    stages = args.stages or stages
    if args.kernel in ("hyper_fwd", "hyper_bwd") and args.streams == "bf16":
        two_byte = two_byte | {"hk_ptr", "h1_ptr", "dh1_ptr", "dhk_ptr"}
        given = {item.split("=", 1)[0] for item in args.set}
        for i, name in enumerate(("FWD_STAGES", "BWD_STAGES")):
            if name in constexprs and name not in given:
                constexprs[name] = hyperstep.STAGES_BF16[i]
        if args.kernel == "hyper_fwd" and "ONE_PASS" not in given:
            constexprs["ONE_PASS"] = True
    if args.kernel in ("hyper_fwd", "hyper_bwd"):  # hyper_step's row (DC, P, EVEN) as it lays out 4 x 768 on DC warps
        row = hyperstep._tuning(constexprs.get("DC", warps), None, 4, 768, 128, 2)
        for name in ("DC", "P", "EVEN"):
            constexprs.setdefault(name, row[name])
    if "STAGES" in constexprs and args.stages:  # mhc_step's walks are pipelined at the kernel's stages
        constexprs["STAGES"] = stages
    kernel = compile_kernel(get(), constexprs, two_byte, warps, maxnreg, stages)
    cuobjdump = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as cubin:
        cubin.write(kernel.asm["cubin"])
        cubin.flush()
        usage = subprocess.run([cuobjdump, "--dump-resource-usage", cubin.name], capture_output=True, text=True,
                               check=True).stdout
        sass = subprocess.run([cuobjdump, "-sass", cubin.name], capture_output=True, text=True, check=True).stdout
    registers, stack = re.search(r"REG:(\d+).*?STACK:(\d+)", usage).groups()
    opcodes = collections.Counter(m.group(2).split(".")[0] for m in re.finditer(
        r"/\*[0-9a-f]{4}\*/\s+(@!?U?P\w+\s+)?([A-Z0-9_.]+)", sass))
    print(f"{args.kernel}: {warps} warps, maxnreg {maxnreg}, num_stages {stages}, {constexprs}")
    print(f"registers {registers}, stack {stack} bytes a thread; barriers {opcodes['BAR']}, "
          f"instructions {sum(opcodes.values())}")
    print("opcodes: " + ", ".join(f"{op} {count}" for op, count in opcodes.most_common(12)))
    conversions = [line.strip() for line in kernel.asm["ttgir"].splitlines() if "ttg.convert_layout" in line]
    print(f"layout conversions: {len(conversions)}")
    for line in conversions:
        print("  " + re.sub(r"\s+loc\(.*\)$", "", line)[:200])
    if args.sass:
        args.sass.write_text(sass)
    if args.ttgir:
        args.ttgir.write_text(kernel.asm["ttgir"])


if __name__ == "__main__":
    main()
