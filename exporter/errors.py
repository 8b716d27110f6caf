"""Errors a user can act on. The CLI prints them as one line, with no traceback unless --debug."""


class ExportError(Exception):
    """Something is wrong with the input, the checkpoint or the machine: exit code 1."""

    exit_code = 1


class UsageError(ExportError):
    """The command line itself is wrong (bad option or combination): exit code 2."""

    exit_code = 2
