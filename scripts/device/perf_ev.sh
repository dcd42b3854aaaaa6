#!/usr/bin/env bash
# Device call EV (one H100): the site forward's scores by source (committed: (K, M), a program's stores M apart) against
# by token ((M, K) seen transposed). The by-token copy, .dev/ab/aggregate_tm.py, came from a working form of
# aggregate.py whose forward kernel took the scores' two strides (not committed: no gain), its allocation and its fake
# made (M, K).t(). EU's profile had the many forward at 16.38 ms a step where EM's took 14.68. (1) the site forward
# alone (site_fwd_ab.py) each way; (2) attnres full's 124M step each way, 30 steps. Result: the scores cost 0.02-0.09
# ms a site by source and no less by token; by token the step failed (inductor asserts the fake's contiguous strides).
source "$(dirname "$0")/common.sh" ev
cp gptablate/model/aggregate.py $OUT/ev_committed.py
for form in committed by_token; do
  [ $form = by_token ] && cp .dev/ab/aggregate_tm.py gptablate/model/aggregate.py
  (cd scripts/device && timeout -k 5 60 python3 site_fwd_ab.py) 2>&1 | tail -3
  timeout -k 5 170 gptablate bench gpt2_124m --steps 30 --all-variants --variant residual=attnres-full \
      --json $OUT/ev_$form.json > $OUT/ev_$form.txt 2>&1
  echo "$form 124M rc=$?  [t=$((SECONDS-T0))s]"; tail -2 $OUT/ev_$form.txt | cut -c1-230
done
cp $OUT/ev_committed.py gptablate/model/aggregate.py
