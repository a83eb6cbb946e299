"""Browser fixtures: Debian's Chromium driven by Playwright, with every network request refused.

Without /usr/bin/chromium the browser tests are skipped loudly, unless
NETXRAY_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("NETXRAY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"NETXRAY_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(f"BROWSER TESTS SKIPPED: {reason} (install Debian's chromium to run them)")


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Chromium (Playwright sync API), shared by the session."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
