#!/usr/bin/env bash
# Set up gptablate on a fresh machine: PyTorch (CPU build, pinned) if none is installed,
# the project itself, and GPT-2's tokenizer ranks in the local cache.
#   scripts/install.sh          # to use it
#   scripts/install.sh --test   # also the test tools
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
  # Pinned on purpose: an unpinned torch lets pip resolve a build with several GB of CUDA
  # packages. On a GPU machine install the torch build you want first; it is kept.
  "$PY" -m pip install "torch==2.13.0"
fi
extras=""
if [ "${1:-}" = "--test" ]; then extras="[test]"; fi
"$PY" -m pip install -e ".${extras}"
# tiktoken fetches GPT-2's ranks from the network on first use; this takes them from the
# openai-whisper sdist on PyPI instead (sha256-checked), so offline machines work too.
"$PY" -m gptablate_cli prepare tokenizer
if [ -n "$extras" ]; then
  # Triton's interpreter runs the model's kernels on the CPU in the tests (tests/interpreter.py); CPU torch ships no
  # Triton and the interpreter needs numpy < 2.3, so both go into a folder of their own that only those tests'
  # processes put on their path. Installed into a fresh folder and moved into place whole. About 1 GB: where it cannot
  # be installed (a full disk, no registry) the rest of the set-up stands and those tests are skipped.
  dest=$("$PY" -c "from gptablate.model import kernels; print(kernels.interpreter_path())")
  packages=$("$PY" -c "from gptablate.model import kernels; print(' '.join(kernels.INTERPRETER_PACKAGES))")
  install_interpreter() {
    local tmp
    mkdir -p "$(dirname "$dest")" && tmp=$(mktemp -d "$dest.XXXXXX") || return 1
    # shellcheck disable=SC2086 - the pinned requirements, one word each
    if "$PY" -m pip install -q --no-deps --target "$tmp" $packages; then
      rm -rf "$dest" && mv "$tmp" "$dest"
    else
      rm -rf "$tmp"
      return 1
    fi
  }
  if PYTHONPATH="$dest" "$PY" -c "import numpy, triton, sys
sys.exit(f'triton=={triton.__version__} numpy=={numpy.__version__}' != '$packages')" 2>/dev/null \
      || install_interpreter; then
    echo "Triton's interpreter for the kernel tests: $dest"
  else
    echo "warning: could not install $packages into $dest; the kernel tests in Triton's interpreter will be skipped" >&2
  fi
fi
