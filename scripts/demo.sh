#!/usr/bin/env bash
# The whole path on a CPU in a few minutes, with no network: Python's own standard library
# as the corpus, the tiny recipe and a contrasting arm at a lower learning rate, then the
# leaderboard. Data and runs go under ./data and ./runs (or $GPTABLATE_DATA / $GPTABLATE_RUNS).
set -euo pipefail
PY=${PYTHON:-python3}
gptablate() { "$PY" -m gptablate_cli "$@"; }

STDLIB=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
gptablate prepare text "$STDLIB"/*.py --name pystdlib
gptablate train tiny --device cpu
gptablate train tiny --device cpu --set train.lr=1e-3
gptablate compare
