"""Errors a user can fix: the CLI prints them as one line, never a traceback."""

import reprlib

ECHO_CHARS = 80
"""Most characters of a user's value echoed in a message (an alias bomb once made a 34.7 MB 'one-line' error)."""

_ECHO = reprlib.Repr()
_ECHO.maxlevel, _ECHO.maxdict, _ECHO.maxlist, _ECHO.maxtuple, _ECHO.maxset = 2, 3, 3, 3, 3
_ECHO.maxstring = _ECHO.maxother = ECHO_CHARS
_ECHO.maxlong = 40


class UserError(Exception):
    """Input that cannot be read (missing file, not UTF-8, malformed YAML, JSON or CSV, too large):
    the message says what was wrong. Exit status 2."""

    exit_code = 2


class InvalidInput(UserError):
    """Input that was read but is invalid (a field, a value, a flag): the message names it and what is
    allowed. Exit status 1."""

    exit_code = 1


def shown(value: object) -> str:
    """``repr(value)`` cut to about ECHO_CHARS characters, without walking all of a large value."""
    return shortened(_ECHO.repr(value), 2 * ECHO_CHARS)


def shortened(text: str, limit: int = 4 * ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"
