# Sourced by the device scripts from perf_db.sh on, with the call's tag: `source "$(dirname "$0")/common.sh" db`.
# Strict pipes, unbuffered Python, the GPT-2 ranks carried with the call (.dev/gpt2.tiktoken), data and runs under
# /tmp, the GPU's name, the checkout installed without its dependencies (the machine has torch; pip's log in
# $OUT/TAG_pip.txt), and T0 for the scripts' elapsed-time marks.
set -uo pipefail
export PYTHONUNBUFFERED=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken} GPTABLATE_DATA=/tmp/gdata \
    GPTABLATE_RUNS=/tmp/gruns
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -m pip install --no-deps --no-build-isolation -q -e . > "$OUT/${1}_pip.txt" 2>&1
T0=$SECONDS
