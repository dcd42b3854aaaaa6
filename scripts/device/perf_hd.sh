#!/usr/bin/env bash
# Device call HD (one H100): target 2's table again: mhc (fp32 and bf16 streams) and attnres full.
source "$(dirname "$0")/common.sh" hd
bench_variants 580 residual=mhc residual=mhc-bf16 residual=attnres-full
