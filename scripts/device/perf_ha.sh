#!/usr/bin/env bash
# Device call HA (one H100): target 2's table again with the code of this writing, every variant against the
# baseline of its own process: the norms and the layouts (AD's rows).
source "$(dirname "$0")/common.sh" ha
bench_variants 580 norm=rmsnorm norm=scalenorm norm=dyt block=post block=sandwich block=peri block=mixln \
  block=deepnorm block=parallel block=parallel_neox block=resi_dual
