#!/usr/bin/env bash
# Device call DC (one H100): what holds hyper_step's and mhc_step's kernels back, from the hardware counters (Nsight
# Compute, clocks left alone): throughput against the memory's, occupancy, and where warps stall; then mhc with its
# forward's 2-byte rows narrowed (call DB's kernels: forward 1.34 -> 1.27 ms) against the baseline; the GPU checks.
source "$(dirname "$0")/common.sh" dc
for check in mhcstep hyperstep; do timeout -k 5 150 python3 tests/${check}_kernel_check.py 2>&1 | tail -1 | cut -c1-200; done
echo "[t=$((SECONDS-T0))s]"
# the second launch of each kernel (-s 4 skips the first four), the sections' figures and every stall reason
timeout -k 5 240 ncu --clock-control none -k regex:'_hyper_(fwd|bwd)_kernel|_mhc_(fwd|bwd)_kernel' -s 4 -c 4 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis \
    --section WarpStateStats --metrics 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio' \
    python3 scripts/device/kernel_profile.py > $OUT/dc_ncu.txt 2>&1; echo "ncu rc=$?"
grep -E "^  _|^    [a-z_]+kernel|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|L1/TEX Hit|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit Reg|Warp Cycles Per Issued|Issued Ipc|Compute \(SM\) Throughput|stalled_(long_scoreboard|barrier|short_scoreboard|math_pipe|mio_throttle|wait|not_selected|lg_throttle|no_instruction|selected|dispatch|branch|tex|drain|imc|membar|sleeping|misc)" \
    $OUT/dc_ncu.txt | sed -e 's/smsp__average_warps_issue_stalled_//' -e 's/_per_issue_active.ratio//' | tr -s ' ' | cut -c1-120
echo "[t=$((SECONDS-T0))s]"
timeout -k 5 $((590 - SECONDS + T0)) python3 -m gptablate_cli bench gpt2_124m --steps 12 --all-variants \
    --variant residual=mhc --json $OUT/dc_bench.json > $OUT/dc_bench.txt 2>&1; echo "bench rc=$?"
tail -3 $OUT/dc_bench.txt | cut -c1-230; echo "[t=$((SECONDS-T0))s]"
