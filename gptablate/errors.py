"""The exceptions the CLI turns into one line: UserError, "the user asked for something we cannot do" (stderr, exit
status 2), and Interrupted, a run stopped by SIGTERM (exit status 130, as Ctrl-C). Anything else is a crash (exit 1,
traceback kept for the bug report).
"""


class UserError(Exception):
    """Bad input: a recipe, a path, a value. The message must name it and say what works."""


class Interrupted(Exception):
    """SIGINT / SIGTERM: the run stops cleanly and is recorded as interrupted."""
