"""`netxray serve` in Chromium: the run viewer follows a run while netxray.watch writes it.

The page is served by uvicorn on 127.0.0.1 (the only host the fixtures let through); a
thread trains under a watch into the runs folder while the test watches the page.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

import netxray
from watch_helpers import train_steps

from ._page import Page, assert_all_cards_rendered

pytestmark = pytest.mark.browser
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def _trainer(path, go: threading.Event, stop: threading.Event, errors: list):
    """Train a tiny MLP under a watch: 3 steps, then one step each time ``go`` is set."""
    try:
        X = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
        y = (X[:, 0] * X[:, 1] > 0).long()
        model = netxray.mlp([2, 8, 2], seed=0)
        opt = torch.optim.SGD(model.parameters(), lr=0.2)
        with netxray.watch(model, path, every=1, probe=(X, y), snapshot_every=2,
                           alarms=lambda f, s: None, config={"dataset": "xor"},
                           commit_interval=0.05) as w:
            steps = 0
            while not stop.is_set():
                if steps >= 3 and not go.wait(0.05):
                    continue
                go.clear()
                train_steps(model, X, y, opt, w)
                w.flush()
                steps += 1
    except BaseException as e:  # reported by the test
        errors.append(e)


def _shown_steps(pg) -> int:
    return pg.evaluate("() => window.netxray.payload().meta.steps")


def test_the_viewer_follows_a_run_being_written(browser, tmp_path):
    from netxray.serve.app import create_app
    from serve_thread import serving

    runs = tmp_path / "runs"
    go, stop, errors = threading.Event(), threading.Event(), []
    trainer = threading.Thread(target=_trainer, args=(runs / "live", go, stop, errors))
    trainer.start()
    try:
        deadline = time.monotonic() + 30
        while not (runs / "live" / "run.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with serving(create_app(runs)) as base:
            listing = Page(browser, base + "/runs/", ready="#runs")
            try:
                row = listing.page.wait_for_selector('tr[data-run="live"]')
                assert row.get_attribute("data-status") == "running"
                listing.page.click('a[href="/runs/live/"]')
                listing.page.wait_for_selector(".nx-card")
                assert listing.page.url == base + "/runs/live/"
            finally:
                listing.close()
            page = Page(browser, base + "/runs/live/", viewport={"width": 1300, "height": 900})
            try:
                pg = page.page
                pg.wait_for_function("() => document.documentElement.dataset.live === 'polling'")
                pg.evaluate("() => { window.__sameDocument = 42; }")  # gone if the page reloads
                before = _shown_steps(pg)
                assert before >= 3
                for _ in range(3):
                    go.set()
                    pg.wait_for_function(f"() => window.netxray.payload().meta.steps > {before}",
                                         timeout=15000)
                    now = _shown_steps(pg)
                    assert pg.locator(".nx-meta-item", has_text="steps").inner_text().endswith(str(now))
                    before = now
                assert pg.evaluate("() => window.__sameDocument") == 42
                stop.set()
                trainer.join(30)
                assert not errors, errors
                pg.wait_for_function("() => document.documentElement.dataset.live === 'done'",
                                     timeout=15000)
                assert pg.evaluate("() => window.netxray.payload().meta.status") == "closed"
                polls = pg.evaluate("() => document.documentElement.dataset.livePolls")
                time.sleep(2.5)  # polling has stopped: no more polls counted
                assert pg.evaluate("() => document.documentElement.dataset.livePolls") == polls
                assert pg.evaluate("() => window.__sameDocument") == 42
                assert_all_cards_rendered(page)
                assert page.console_errors == [] and page.page_errors == []
                assert page.blocked == [], page.blocked
            finally:
                page.close()
    finally:
        stop.set()
        go.set()
        trainer.join(30)
