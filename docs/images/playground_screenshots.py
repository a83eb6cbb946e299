"""Retake the playground's picture in docs/images/playground.png.

    .venv/bin/python docs/images/playground_screenshots.py

Serves ``netxray serve``'s app on a free loopback port, opens the playground in Debian's
Chromium with a spiral set-up, lets it train, pauses, and photographs the page.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))

from netxray.serve.app import create_app  # noqa: E402
from serve_thread import serving  # noqa: E402

SETUP = ("data=spiral&n=500&noise=0.1&ratio=0.6&batch=10&feat=x1,x2,x1^2,x2^2,sin_x1,sin_x2"
         "&hidden=8,8,4&act=tanh&opt=adam&lr=0.01&seed=1")


def main() -> None:
    from playwright.sync_api import sync_playwright

    with serving(create_app(Path(tempfile.mkdtemp()))) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1500}, device_scale_factor=1)
        page.goto(f"{base}/#{SETUP}")  # the set-up lives in the fragment
        page.wait_for_selector('button[data-key="play"]')
        page.click('button[data-key="play"]')
        page.wait_for_timeout(12_000)
        page.click('button[data-key="play"]')  # pause
        page.wait_for_timeout(1_000)
        page.screenshot(path=str(HERE / "playground.png"))
        browser.close()


if __name__ == "__main__":
    main()
