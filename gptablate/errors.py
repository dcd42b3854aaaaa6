"""The one exception type that means "the user asked for something we cannot do".

The CLI turns a UserError into a single line on stderr and exit status 2; anything else
is a crash (exit 1, traceback kept for the bug report).
"""


class UserError(Exception):
    """Bad input: a recipe, a path, a value. The message must name it and say what works."""
