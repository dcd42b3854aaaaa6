#!/usr/bin/env bash
# Device call DE (one H100): mhc_step's pipelined kernels (call DD) swept around their fastest shapes (2 warps, 16
# tokens, 16-feature chunks, stages 2-4), the fastest written into TUNING; the counters of the kernels as committed
# (Nsight Compute: occupancy, stalls); the kernel check; mhc against the baseline.
source "$(dirname "$0")/common.sh" de
timeout -k 5 150 ncu --clock-control none -k regex:'_mhc_(fwd|bwd)_kernel' -s 2 -c 2 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
    --section WarpStateStats --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    python3 scripts/device/kernel_profile.py > $OUT/de_ncu.txt 2>&1; echo "ncu rc=$?"
grep -E "^  _|Duration|DRAM Throughput|L2 Hit Rate|L1/TEX Hit|Achieved Occupancy|Registers Per|Block Limit|Warp Cycles Per Issued|Compute \(SM\) Throughput|stalled_(long_scoreboard|barrier|short_scoreboard|wait|not_selected|mio_throttle|lg_throttle)" \
    $OUT/de_ncu.txt | grep -v "_hyper_" | sed -e 's/smsp__average_warps_issue_stalled_//' -e 's/_per_issue_active.ratio//' | tr -s ' ' | cut -c1-120
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 300 python3 scripts/device/mhcstep_ab.py committed=gptablate/model/mhcstep.py --sweep committed \
    --write-best committed 2>&1 | grep -vi warn | cut -c1-240
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 150 python3 tests/mhcstep_kernel_check.py 2>&1 | tail -1 | cut -c1-200
timeout -k 5 $((590 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
    --variant residual=mhc --json $OUT/de_bench.json > $OUT/de_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/de_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
grep -n "^TUNING" gptablate/model/mhcstep.py
