"""Running a Triton kernel check on the CPU, in Triton's interpreter (tests of model/*.py's kernels)."""

import os
import subprocess
import sys

import numpy as np
import pytest

from gptablate.model.kernels import interpreter_path

try:
    import triton  # noqa: F401
    HAVE_TRITON = True
except ImportError:
    HAVE_TRITON = False

# Triton's interpreter does not run under numpy >= 2.3 (its scalar conversions fail, as on the GPU
# machine). Where this environment has no such pair, the checks' processes take the folder that
# `scripts/install.sh --test` fills (kernels.interpreter_path()), first on their PYTHONPATH.
HERE = HAVE_TRITON and tuple(map(int, np.__version__.split(".")[:2])) < (2, 3)
APART = interpreter_path()
needs_interpreter = pytest.mark.skipif(
    not HERE and not (APART / "triton").is_dir(),
    reason=f"needs Triton and numpy < 2.3 for its interpreter, here or in {APART} (scripts/install.sh --test)")


def mend_interpreter_dot() -> None:
    """Triton's interpreter (3.9) keeps bf16 tiles as their uint16 bit patterns and its tl.dot multiplies those as
    integers; a check whose kernels take a bf16 tl.dot calls this first, in its own process, so that bf16 operands
    are widened to fp32 (exactly) before the interpreter's matmul."""
    import triton.language as tl
    from triton.runtime import interpreter as ti

    plain = ti.InterpreterBuilder.create_dot

    def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        def wide(x):
            if x.dtype.scalar != tl.bfloat16:
                return x
            return ti.TensorHandle(ti._convert_float(x.data, tl.bfloat16, tl.float32, None).view(np.float32),
                                   tl.float32)
        return plain(self, wide(a), wide(b), d, input_precision, max_num_imprecise_acc)

    ti.InterpreterBuilder.create_dot = create_dot


def run_check(args: list[str], env: dict | None = None, timeout: int = 600) -> None:
    """Run a check script, `python args...`; it must exit 0 and print ok."""
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


def run_interpreted(args: list[str]) -> None:
    """Run `python args...` with TRITON_INTERPRET=1 (and the interpreter's folder first on PYTHONPATH unless this
    environment has a Triton and numpy it runs under); it must exit 0 and print ok."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    if not HERE:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APART), os.environ.get("PYTHONPATH")) if p)
    run_check(args, env=env)


def kernel_tests(interpreted: list[str], on_gpu: list[str]):
    """The two tests of a kernel check: `python interpreted...` in the interpreter on the CPU, `python on_gpu...`
    on a GPU. Each must exit 0 and print ok. Use: `test_a, test_b = kernel_tests(...)` at module level."""
    import torch

    @needs_interpreter
    def test_kernels_match_reference_in_triton_interpreter():
        run_interpreted(interpreted)

    @pytest.mark.skipif(not (torch.cuda.is_available() and HAVE_TRITON), reason="needs CUDA and Triton")
    def test_kernels_match_reference_on_gpu():
        run_check(on_gpu)

    return test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu
