#!/usr/bin/env bash
# Device call HC (one H100): target 2's table again: denseformer, attnres and hyper (fp32 and bf16 streams, static).
source "$(dirname "$0")/common.sh" hc
bench_variants 580 residual=denseformer residual=attnres residual=hyper residual=hyper-static residual=hyper-bf16
