"""Headless Chromium for browser tests: the system's ``chromium`` driven by Playwright.

Playwright's own browser download is never used (``playwright install`` cannot run here):
``infra/setup.sh`` installs Debian's ``chromium`` package and this launches that binary.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from core.settings import PROJECT_ROOT

# Where a test run keeps its screenshots (.local/ is git-ignored).
ARTIFACTS_DIR = PROJECT_ROOT / ".local" / "test-artifacts"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# No sandbox (containers lack the namespaces it needs), no GPU, and nothing that calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> Path:
    """The system Chromium; a missing one fails the test (the project's setup installs it)."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not installed: run infra/setup.sh (it installs Debian's package)")
    return Path(found)


@contextmanager
def headless_chromium() -> Iterator[Browser]:
    """A headless Chromium, closed (with Playwright's driver) when the block ends."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def is_png(path: Path) -> bool:
    """Tell whether the file exists and starts with the PNG signature."""
    return path.is_file() and path.read_bytes()[: len(PNG_SIGNATURE)] == PNG_SIGNATURE
