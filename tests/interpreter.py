"""Running a Triton kernel check on the CPU, in Triton's interpreter (tests of model/*.py's kernels)."""

import os
import subprocess
import sys

import numpy as np
import pytest

try:
    import triton  # noqa: F401
    HAVE_TRITON = True
except ImportError:
    HAVE_TRITON = False

# Triton's interpreter does not run under numpy >= 2.3 (its scalar conversions fail, as on the GPU
# machine); there the GPU tests cover the kernels.
needs_interpreter = pytest.mark.skipif(
    not HAVE_TRITON or tuple(map(int, np.__version__.split(".")[:2])) >= (2, 3),
    reason="needs Triton, and numpy < 2.3 for its interpreter")


def run_check(args: list[str], env: dict | None = None, timeout: int = 600) -> None:
    """Run a check script, `python args...`; it must exit 0 and print ok."""
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-2000:]


def run_interpreted(args: list[str]) -> None:
    """Run `python args...` with TRITON_INTERPRET=1; it must exit 0 and print ok."""
    run_check(args, env={**os.environ, "TRITON_INTERPRET": "1"})


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
