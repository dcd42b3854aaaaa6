#!/usr/bin/env bash
# Device call BF (4 H200s): (1) what the 1.5B bench waited on at exit in call AV (its table printed, then the 170 s
# limit ended it): the same command with each output line stamped with the seconds since start, a snapshot of the
# processes every 10 s, and SIGABRT (Python's faulthandler dumps every thread) if it outlives 280 s; (2) targets 3
# with the code of this writing (AV's rows ran with the unneeded stream copy and the operations opaque).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONFAULTHANDLER=1 GPTABLATE_BPE_FILE=${GPTABLATE_BPE_FILE:-$PWD/.dev/gpt2.tiktoken}
nvidia-smi --query-gpu=name --format=csv,noheader | head -1; nvidia-smi --query-gpu=name --format=csv,noheader | wc -l
python3 -m pip install --no-deps --no-build-isolation -q -e . > $OUT/bf_pip.txt 2>&1
T0=$SECONDS
( while sleep 10; do echo "== t=$((SECONDS-T0))"; ps -eo pid,ppid,etimes,stat,rss,cmd --sort=pid | grep -E "gptablate|torch.distributed" | grep -v grep | cut -c1-160; done ) > $OUT/bf_ps.txt 2>&1 &
PS_PID=$!
timeout -s ABRT -k 10 280 python3 -m gptablate_cli bench gpt2_1.5b --gpus 4 --steps 8 --json $OUT/bf_1p5b.json 2>&1 \
  | while IFS= read -r l; do echo "[$((SECONDS-T0))s] $l"; done > $OUT/bf_1p5b.txt
echo "1p5b rc=${PIPESTATUS[0]} ended at t=$((SECONDS-T0))s"; grep -A2 "^\[[0-9]*s\] recipe" $OUT/bf_1p5b.txt | cut -c1-220
tail -3 $OUT/bf_1p5b.txt | cut -c1-200
kill $PS_PID 2>/dev/null
b() {  # limit name args...: skipped when the call has less time left than the limit
  if [ $((SECONDS - T0 + $1)) -gt 580 ]; then echo "skipped $2 (time)"; return; fi
  timeout -k 5 "$1" python3 -m gptablate_cli bench "${@:3}" --json $OUT/bf_$2.json > $OUT/bf_$2.txt 2>&1
  echo "$2 rc=$?"; grep -v "^\s*$" $OUT/bf_$2.txt | grep -A4 "^recipe" | cut -c1-220; echo "  [t=$((SECONDS-T0))s]"
}
b 200 124 gpt2_124m --scaling 1,2,4 --steps 30
b 170 345 gpt2_345m --scaling 1,4 --steps 20 --set train.micro_batch=30
