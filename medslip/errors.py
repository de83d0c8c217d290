"""Exceptions whose message is shown to the user as is (no traceback) by the CLI."""


class MedslipError(Exception):
    """An error caused by input or configuration; the message names the file/key and the problem."""
