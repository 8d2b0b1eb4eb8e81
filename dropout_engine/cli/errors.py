"""The one error type of the command line: a user mistake, not a bug.

``main`` prints its message as one line on stderr and exits with code 2 (no
traceback).  Anything else that escapes is a bug and keeps its traceback.
"""


class CLIError(Exception):
    """A bad input file, column or option; the message says what and where."""
