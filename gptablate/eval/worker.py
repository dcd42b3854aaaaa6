"""One torchrun rank of `gptablate eval --gpus N`: `python -m gptablate.eval.worker ARGS`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError
from ..train.heap import freeze_for_exit
from ..train.launch import tell_launcher


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="gptablate.eval.worker")
    ap.add_argument("runs", nargs="*")
    ap.add_argument("--tasks", default=None)
    ap.add_argument("--plan", default=None, help="JSON: each run's own tasks, {run: [task, ...]}, for the runs")
    ap.add_argument("--device", default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--format", default="table")
    ap.add_argument("--error-file", required=True, help="where a user error goes, for the launcher to print once")
    args = ap.parse_args(argv)
    import torch.distributed as dist

    from .run import render
    from .val import PartlyScored, evaluate_runs

    try:
        plan = json.loads(args.plan) if args.plan else None
        results = evaluate_runs(list(plan) if plan else args.runs, plan or args.tasks.split(","), args.device,
                                args.batch_size, Path(args.data_dir) if args.data_dir else None, args.limit)
        if results:  # rank 0
            print(render(results, args.format), flush=True)
    except UserError as e:
        if isinstance(e, PartlyScored) and e.results:  # rank 0: the runs that were scored, then the error
            print(render(e.results, args.format), flush=True)
        tell_launcher(Path(args.error_file), e)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    freeze_for_exit()  # the process ends here: its exit skips a collection over the whole heap
    sys.exit(code)
