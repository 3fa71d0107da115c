"""Headless Chromium (Debian package ``chromium``; ``make test`` installs it) for the report tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars")
LOADED = (
    "<script>addEventListener('load', () => {"
    "for (const image of document.images) image.dataset.rendered = image.naturalWidth + 'x' + image.naturalHeight;"
    "document.body.dataset.loaded = 'yes';});</script>"
)
"""Appended to a copy of the page: marks every image with the size Chromium decoded it at."""


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium not found: install the Debian package chromium (make chromium, or make test)",
                    pytrace=False)
    return path


def _run(page: Path, profile: Path, *args: str) -> str:
    done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def rendered_dom(page: Path, work: Path) -> str:
    """The DOM of ``page`` after Chromium loaded it, every <img> marked data-rendered='WxH'."""
    copy = work / f"loaded-{page.name}"
    copy.write_text(page.read_text().replace("</body>", LOADED + "</body>"))
    return _run(copy, work / "profile-dom", "--virtual-time-budget=10000", "--dump-dom")


def screenshot(page: Path, work: Path, target: Path, width: int = 1280, height: int = 2000) -> Path:
    """A PNG of the top ``height`` pixels of ``page`` at ``width``."""
    _run(page, work / "profile-shot", f"--window-size={width},{height}", f"--screenshot={target}")
    assert target.is_file(), f"chromium wrote no screenshot to {target}"
    return target
