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
