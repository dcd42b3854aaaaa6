"""attnres full's step with and without aggregate.py's memo of the many kernels' offset tables, alternated in one
process, with the baseline first (needs a GPU): whether making and copying a table at every site's call costs the
step time (the step ran 3 to 5 ms longer than its kernels, call EN).

    python3 scripts/device/table_ab.py [--steps 30] [--rounds 2] [--set k=v ...]

Prints each row's step time and its ratio to the baseline's, and the memo's hits and misses."""
import argparse
import functools
import json

from gptablate.model import aggregate
from gptablate.train.bench import VARIANTS, bench_recipe


class Counted(dict):
    """A memo that counts its lookups."""

    def __init__(self):
        super().__init__()
        self.hits = self.misses = 0

    def __contains__(self, key):
        found = dict.__contains__(self, key)
        self.hits += found
        self.misses += not found
        return found


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    args = ap.parse_args()
    made = aggregate._table
    base = bench_recipe("gpt2_124m", args.sets, args.steps, None, False)
    print(f"baseline: {base['step_ms']:.2f} ms a step", flush=True)
    rows = []
    for round_ in range(args.rounds):
        for memo in (True, False):
            counted = Counted()
            aggregate._table = functools.partial(made, memo=counted if memo else None)
            r = bench_recipe("gpt2_124m", args.sets + VARIANTS["residual=attnres-full"], args.steps, None, False)
            aggregate._table = made
            row = dict(round=round_, memo=memo, step_ms=r["step_ms"], ratio=r["step_ms"] / base["step_ms"],
                       peak_mem_gib=r["peak_mem_gib"], hits=counted.hits, misses=counted.misses,
                       tables=len(counted), slowest_window=r["slowest_window_tokens_per_s"])
            rows.append(row)
            print(json.dumps(row), flush=True)
    for memo in (True, False):
        mine = [r["step_ms"] for r in rows if r["memo"] == memo]
        print(f"{'memo   ' if memo else 'no memo'}: {' '.join(f'{t:.2f}' for t in mine)} ms, "
              f"best {min(mine) / base['step_ms']:.3f}x the baseline's {base['step_ms']:.2f}")


if __name__ == "__main__":
    main()
