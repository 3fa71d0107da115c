"""Secrets are masked in text and in every log record, whatever library composed it."""

from __future__ import annotations

import logging

import pytest

from inferencefleet import redaction
from inferencefleet.redaction import MASK, install_log_redaction, redact, redact_url, remember, remember_url


@pytest.fixture(autouse=True)
def forget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redaction, "_secrets", set())


@pytest.mark.parametrize("url, shown", [
    ("https://alice:s3cret@prom.example:9090/x", f"https://{MASK}@prom.example:9090/x"),
    ("http://token@prom", f"http://{MASK}@prom"),
    ("http://prom:9090/?a=b@c", "http://prom:9090/?a=b@c"),
    ("talking to http://u:p@h and https://v:q@k", f"talking to http://{MASK}@h and https://{MASK}@k"),
])
def test_urls_lose_their_user_info(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_remembered_secrets_are_masked_raw_and_however_deeply_escaped() -> None:
    remember("first-line\nsecond-line\n", None, "ab")  # "ab" is too short to mask
    assert redact("raw first-line\nsecond-line\n!") == f"raw {MASK}!"
    assert redact(repr(repr("b'Bearer first-line\nsecond-line'"))) == repr(repr(f"b'Bearer {MASK}\n{MASK}'"))
    assert redact("about ab") == "about ab"


def test_a_url_password_is_masked_raw_and_percent_decoded() -> None:
    remember_url("http://alice:p%40ss-word@prom:9090")
    assert redact("auth p@ss-word and p%40ss-word") == f"auth {MASK} and {MASK}"


def test_log_records_are_redacted_whoever_logs_them(caplog: pytest.LogCaptureFixture) -> None:
    factory = logging.getLogRecordFactory()
    try:
        install_log_redaction()
        install_log_redaction()  # idempotent
        remember("planted-token")
        with caplog.at_level(logging.INFO):
            logging.getLogger("httpx").info("HTTP Request: POST %s with %s", "http://u:pw@prom/api", "planted-token")
        assert caplog.messages == [f"HTTP Request: POST http://{MASK}@prom/api with {MASK}"]
    finally:
        logging.setLogRecordFactory(factory)
