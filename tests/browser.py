"""Headless Chromium (Debian's package) driven by Playwright; never downloads a browser."""
from __future__ import annotations

import shutil
from contextlib import contextmanager

import pytest

from tests.conftest import needs

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path():
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium():
    """Headless Chromium; the test must be marked `browser` (it fails otherwise, see needs())."""
    needs("browser")
    path = chromium_path()
    if not path:
        pytest.skip("BROWSER TEST SKIPPED: no chromium on this machine (apt-get install chromium fonts-wqy-zenhei)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
