"""Entry point of the `gptablate` console script: user errors become one line and exit 2, an interrupted run one line
and exit 130."""

from __future__ import annotations

import sys

from gptablate.errors import Interrupted, UserError

from . import bench, compare, evaluate, prepare, recipes, runs, sweep, train  # noqa: F401  (register the subcommands)
from .app import app


def main() -> None:
    try:
        app()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, Interrupted):  # Ctrl-C, or SIGTERM in a run (the run's log names its step)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        from gptablate.train.heap import freeze_for_exit

        freeze_for_exit()


if __name__ == "__main__":
    main()
