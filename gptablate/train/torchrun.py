"""torch.distributed's launcher (`python -m torch.distributed.run`), with a rank's reported failure left to the rank.

A rank that stops on a user error (exit 2), the divergence guard (3) or an interrupt (130) has said why in one line
(a user error in a file the launcher prints it from); torchrun would follow it with its own log line and the Python
traceback of its ChildFailedError. Here those stay unsaid and the launcher exits with the rank's status. Any other
failure (a crash, a signal) keeps torchrun's report of it, without the traceback of torchrun itself.
"""

from __future__ import annotations

import logging
import sys

REPORTED = (2, 3, 130)  # the exit statuses of a rank that has said why it stopped


class _Reported(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        said = str(record.msg).startswith("failed (exitcode") and record.args and record.args[0] in REPORTED
        return not said


def main(argv: list[str]) -> int:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    logging.getLogger("torch.distributed.elastic.multiprocessing.api").addFilter(_Reported())
    try:
        torchrun(argv)
    except ChildFailedError as e:
        _, failure = e.get_first_failure()
        if failure.exitcode not in REPORTED:
            print(e.format_msg(), file=sys.stderr)
        return failure.exitcode if 0 < failure.exitcode < 256 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
