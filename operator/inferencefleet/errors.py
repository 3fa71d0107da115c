"""Errors a user can fix: the CLI prints them as one line, never a traceback."""


class UserError(Exception):
    """Bad input (file, field, flag): the message says what was wrong and what is allowed."""
