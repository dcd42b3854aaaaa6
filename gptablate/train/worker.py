"""Entry point of one torchrun rank: `python -m gptablate.train.worker --run-dir DIR ...`.

The launching process has already validated the recipe and written it to the run directory.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from ..errors import Interrupted, UserError
from ..recipe import recipe_from_dict
from .engine import Diverged, train
from .heap import freeze_for_exit
from .launch import RECIPE_FILE, WORKER_ERROR, tell_launcher


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="gptablate.train.worker")
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--run-id", required=True)
    ap.add_argument("--device", default=None)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--no-checkpoints", action="store_true", help="write no checkpoint (bench's runs)")
    args = ap.parse_args(argv)
    run_dir = Path(args.run_dir)
    try:
        recipe = recipe_from_dict(yaml.safe_load((run_dir / RECIPE_FILE).read_text()))
        train(recipe, run_dir, args.run_id, args.device, resume=args.resume, checkpoints=not args.no_checkpoints)
    except Diverged as e:
        print(f"run {args.run_id} {e}", file=sys.stderr)
        return 3
    except UserError as e:
        tell_launcher(run_dir / WORKER_ERROR, e)
        return 2
    except (KeyboardInterrupt, Interrupted):
        return 130
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    code = main()
    freeze_for_exit()  # the process ends here: its exit skips a collection over the whole heap
    sys.exit(code)
