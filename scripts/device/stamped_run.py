"""Run a command, writing each line of its output to a file stamped with the seconds since it started.

`python3 scripts/device/stamped_run.py LOG -- CMD ...`: the last line is `[   t] exit RC`. The exit status
is the command's. Used by the target-5 calls (the arm's start-up, compilation, validation and exit read off
the stamps); earlier calls (perf_bl.sh, perf_bm.sh, perf_bo.sh) carried the same loop inline.
"""

import subprocess
import sys
import time

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: stamped_run.py LOG -- CMD ...")
    t0 = time.time()
    with open(sys.argv[1], "w") as log:
        proc = subprocess.Popen(sys.argv[3:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            log.write(f"[{time.time() - t0:7.2f}] {line}")
            log.flush()
        rc = proc.wait()
        log.write(f"[{time.time() - t0:7.2f}] exit {rc}\n")
    sys.exit(rc)
