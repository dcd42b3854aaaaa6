"""Target 5's estimate of a whole arm from a shorter stamped run (docs/performance.md, "The studies' arm").

`python3 scripts/device/arm_estimate.py STAMPED_LOG [--metrics FILE] [--steps 5000] [--evals 10]`: STAMPED_LOG is
stamped_run.py's output of one `gptablate train` run (cold: fresh inductor and Triton caches); its metrics.jsonl is
found from the run's "finished: DIR" line unless given. The estimate is

    (stamp of step 10's line − 10 steady steps) + steps × steady step + the first validation
    + (evals − 1) × a later validation + (step N's line to the exit)

with the steady step the mean of the run's logging windows after the first (CUDA-event timed, validation left out)
and the validations' own seconds (val_s). The steady step from the output lines' stamps is printed as a check.
"""

import argparse
import json
import re
import sys
from pathlib import Path

LINE = re.compile(r"^\[\s*([0-9.]+)\] (.*)$")
STEP = re.compile(r"^step (\d+)/(\d+) ")


def parse(log: Path) -> tuple[dict[int, float], float | None, Path | None]:
    """Stamps of the step lines, the exit's stamp, and the run's folder."""
    steps, exit_at, run_dir = {}, None, None
    for raw in log.read_text().splitlines():
        m = LINE.match(raw)
        if not m:
            continue
        t, text = float(m.group(1)), m.group(2)
        s = STEP.match(text)
        if s:
            steps[int(s.group(1))] = t
        elif text.startswith("exit "):
            exit_at = t
        elif text.startswith("run ") and " finished: " in text:
            run_dir = Path(text.rsplit(" finished: ", 1)[1].strip())
    return steps, exit_at, run_dir


def estimate(steps: dict[int, float], exit_at: float, rows: list[dict], n_steps: int, n_evals: int) -> dict:
    if 10 not in steps:
        raise ValueError("no 'step 10/' line: log every 10 steps (the recipe's default)")
    windows = [r for r in rows[1:] if r.get("tokens_per_s")]
    tokens = [r["tokens"] - p["tokens"] for p, r in zip(rows, rows[1:]) if r.get("tokens_per_s")]
    step_tokens = rows[0]["tokens"] / rows[0]["step"]
    step_s = sum(n / r["tokens_per_s"] for n, r in zip(tokens, windows)) / (sum(tokens) / step_tokens)
    vals = [r["val_s"] for r in rows if "val_s" in r]
    if len(vals) < 2:
        raise ValueError("needs two validations (the first one compiles what it needs, the later ones do not)")
    start = steps[10] - 10 * step_s
    end = exit_at - steps[max(steps)]
    total = start + n_steps * step_s + vals[0] + (n_evals - 1) * vals[1] + end
    quiet = [k for k in sorted(steps) if k > 10 and not any(r["step"] == k and "val_s" in r for r in rows)]
    # two output lines with no validation between them: the check from the host's stamps
    a, b = quiet[len(quiet) // 2], quiet[-1]
    between = [r for r in rows if a < r["step"] <= b and "val_s" in r]
    stamped = (steps[b] - steps[a]) / (b - a) if not between and b > a else float("nan")
    return {"start_s": start, "step_ms": 1e3 * step_s, "stamped_step_ms": 1e3 * stamped, "first_val_s": vals[0],
            "later_val_s": vals[1], "end_s": end, "total_s": total, "minutes": total / 60}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--metrics", type=Path)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--evals", type=int, default=10)
    args = ap.parse_args()
    if not args.log.is_file():
        sys.exit(f"{args.log}: no such file")
    steps, exit_at, run_dir = parse(args.log)
    metrics = args.metrics or (run_dir / "metrics.jsonl" if run_dir else None)
    if exit_at is None or metrics is None or not metrics.is_file():
        sys.exit(f"{args.log}: needs the run's exit line and its metrics.jsonl (--metrics)")
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    try:
        e = estimate(steps, exit_at, rows, args.steps, args.evals)
    except ValueError as err:
        sys.exit(f"{args.log}: {err}")
    print(f"start to step 10 less 10 steps {e['start_s']:.2f} s + {args.steps} x {e['step_ms']:.2f} ms (stamps: "
          f"{e['stamped_step_ms']:.2f}) + validations {e['first_val_s']:.2f} + {args.evals - 1} x "
          f"{e['later_val_s']:.2f} s + end {e['end_s']:.2f} s = {e['total_s']:.1f} s = {e['minutes']:.2f} minutes")


if __name__ == "__main__":
    main()
