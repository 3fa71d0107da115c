"""Credentials never leave the process: not in a log line, an Event, a status message or an error.

URLs lose their user info wherever they are shown, and every secret the process reads (a URL's
password, a basic-auth password, a bearer token) is remembered and masked in any text built later,
including messages that HTTP libraries compose from a request.
"""

from __future__ import annotations

import base64
import logging
import re
from urllib.parse import unquote, urlsplit

MASK = "***"
MIN_SECRET_CHARS = 4
"""Shorter values are not masked: masking "a" would garble every message and protect nothing."""

_USERINFO = re.compile(r"(?<=://)[^/?#@\s]+@")
_PRINTABLE_RUN = re.compile(r"[^\x00-\x20\x7f]+")
_secrets: set[str] = set()


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``."""
    return _USERINFO.sub(f"{MASK}@", url)


def remember(*secrets: str | None) -> None:
    """Mask these values in every later ``redact``: as given, and each run of printable characters in them
    (a repr escapes a newline once, a repr of that repr twice: the runs between are masked whatever the depth)."""
    for secret in secrets:
        if secret is None:
            continue
        for form in (secret, *_PRINTABLE_RUN.findall(secret)):
            if len(form) >= MIN_SECRET_CHARS:
                _secrets.add(form)


def remember_url(url: str) -> None:
    """Remember the user info of ``url``, raw and percent-decoded."""
    parts = urlsplit(url)
    for value in (parts.username, parts.password):
        if value:
            remember(value, unquote(value))


def remember_basic_auth(username: str, password: str) -> None:
    """Remember a basic-auth password and the header value that carries it."""
    remember(password, base64.b64encode(f"{username}:{password}".encode()).decode())


def split_user_info(url: str) -> tuple[str, tuple[str, str] | None]:
    """``url`` without its user info, and the (username, password) it held, percent-decoded."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    remember_url(url)
    credentials = (unquote(parts.username), unquote(parts.password or ""))
    remember_basic_auth(*credentials)
    return _USERINFO.sub("", url, count=1), credentials


def redact(text: str) -> str:
    """``text`` with URL user info and every remembered secret masked (longest first)."""
    text = redact_url(text)
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def install_log_redaction() -> None:
    """Mask secrets in every log record this process creates, whichever handler or library logs it."""
    make_record = logging.getLogRecordFactory()
    if getattr(make_record, "redacting", False):
        return

    def redacted_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    redacted_record.redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacted_record)
