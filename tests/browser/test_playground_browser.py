"""The live playground in Chromium: play, the counter-examples, the URL state, saving a run.

The server runs in a thread on 127.0.0.1; every other request is refused.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from netxray.serve.settings import Limits  # noqa: E402
from serve_helpers import serve_playground  # noqa: E402

pytestmark = pytest.mark.browser
EPOCH = "() => +document.documentElement.getAttribute('data-epoch')"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve_playground(tmp_path_factory.mktemp("runs"), Limits(max_sessions=3)) as s:
        yield s


class Tab:
    def __init__(self, browser, base: str, url: str | None = None) -> None:
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                           accept_downloads=True)
        self.context.route("**/*", self._route)
        self.base = base
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url or base)
        self.page.wait_for_selector("figure[data-chart-id=network][data-rendered='1']",
                                    timeout=30_000)

    def _route(self, route) -> None:
        if route.request.url.startswith(self.base):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def epoch(self) -> int:
        return int(self.page.evaluate(EPOCH))

    def wait_epoch(self, at_least: int) -> None:
        self.page.wait_for_function(
            f"() => +document.documentElement.getAttribute('data-epoch') >= {at_least}",
            timeout=30_000)

    def pause(self) -> None:
        """Click pause while frames stream. The click event goes to the button directly:
        Playwright's own click waits for the page to settle, which software-rendered frames
        at 20 per second starve (measured: 21 s, while training ran from epoch 27 to 340)."""
        self.page.dispatch_event("button[data-key=play]", "click")

    def close(self) -> None:
        self.context.close()


def test_play_trains_and_the_counters_move(browser, served):
    base, router = served
    tab = Tab(browser, base)
    pg = tab.page
    assert tab.epoch() == 0
    loss0 = pg.text_content("#nx-test-loss")
    pg.click("button[data-key=play]")
    tab.wait_epoch(8)
    tab.pause()
    assert pg.text_content("#nx-test-loss") != loss0
    assert int(pg.text_content("#nx-epoch")) >= 8
    for cid in ("network", "surface", "loss", "findings", "pca-act1"):
        card = pg.query_selector(f"figure[data-chart-id='{cid}']")
        assert card.get_attribute("data-rendered") == "1", card.get_attribute("data-error")
    assert "epoch" in pg.text_content("figure[data-chart-id=surface] h3")
    n = len(router.live_sessions)
    assert not tab.errors and not tab.blocked
    tab.close()  # a closed tab stops its training
    deadline = time.monotonic() + 10
    while len(router.live_sessions) >= n and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(router.live_sessions) == n - 1


def test_dying_relu_greys_dead_units(browser, served):
    base, _ = served
    tab = Tab(browser, base)
    pg = tab.page
    pg.select_option("select[data-key=preset]", "dying_relu")
    pg.wait_for_function("() => (document.documentElement.getAttribute('data-query') || '')"
                         ".includes('preset=dying_relu')", timeout=30_000)
    pg.click("button[data-key=play]")
    tab.wait_epoch(20)
    tab.pause()
    body = pg.query_selector("figure[data-chart-id=network] .nx-body")
    pg.wait_for_function("() => +document.querySelector(\"figure[data-chart-id=network] "
                         ".nx-body\").getAttribute('data-dead') > 0", timeout=10_000)
    assert int(body.get_attribute("data-dead")) >= 3
    assert "dead (greyed)" in pg.text_content("figure[data-chart-id=network]")
    assert "dead" in pg.text_content("figure[data-chart-id=findings]").lower()
    assert not tab.errors
    tab.close()


def test_the_url_shares_the_setup(browser, served):
    base, _ = served
    tab = Tab(browser, base)
    pg = tab.page
    pg.fill("input[data-key=hidden]", "5,3")
    pg.press("input[data-key=hidden]", "Enter")
    pg.wait_for_function("() => (document.documentElement.getAttribute('data-query') || '')"
                         ".includes('hidden=5,3')", timeout=30_000)
    pg.select_option("select[data-key=act]", "gelu")
    pg.wait_for_function("() => location.hash.includes('act=gelu')", timeout=30_000)
    shared = pg.url
    tab.close()
    other = Tab(browser, base, shared)
    q = other.page.evaluate("() => document.documentElement.getAttribute('data-query')")
    assert "#" + q == shared[shared.index("#"):]
    assert other.page.input_value("input[data-key=hidden]") == "5,3"
    assert other.page.input_value("select[data-key=act]") == "gelu"
    names = other.page.evaluate("() => window.netxray.payload().sections[0].charts"
                                ".find(c => c.id === 'network').layers.map(l => l.name)")
    assert names == ["input", "act1", "act2", "output"]
    assert not other.errors
    other.close()


def test_save_this_run_downloads_its_report(browser, served, tmp_path):
    base, _ = served
    tab = Tab(browser, base, base + "#hidden=3&n=200")
    pg = tab.page
    pg.click("button[data-key=step]")
    tab.wait_epoch(1)
    with pg.expect_download(timeout=60_000) as dl:
        pg.click("button[data-key=save]")
    path = tmp_path / "report.html"
    dl.value.save_as(path)
    html = path.read_text()
    assert "netxray-data" in html and "playground" in html
    assert pg.evaluate("() => document.documentElement.getAttribute('data-saved-run')")
    assert not tab.errors
    tab.close()


def test_patch_redraws_one_chart_in_place_keeping_its_state(browser, tmp_path):
    """window.netxray.patch on a static report: same card, new data, the chosen colouring kept."""
    from netxray.report import charts
    from netxray.report.html import write_report

    from ._page import Page

    def sc(title, ys):
        spec = charts.scatter(title, [0, 1, 2], ys, color_by={"class": [0, 1, 1],
                                                              "value": [0.1, 0.5, 0.9]})
        spec["id"] = "pts"
        return spec

    path = write_report({"title": "r", "sections": [{"id": "a", "title": "A", "charts": [
        sc("before", [0, 1, 2]), charts.bars("other", ["x"], [1.0])]}]}, tmp_path / "r.html")
    page = Page(browser, path)
    pg = page.page
    card = pg.query_selector("figure[data-chart-id=pts]")
    pg.select_option("figure[data-chart-id=pts] select.nx-select", "1")
    new = sc("after", [2, 1, 0])
    assert pg.evaluate("(s) => window.netxray.patch('pts', s)", new) is True
    assert pg.evaluate("(s) => window.netxray.patch('nope', s)", new) is False
    same = pg.query_selector("figure[data-chart-id=pts]")
    assert pg.evaluate("([a, b]) => a === b", [card, same])
    assert same.query_selector("h3").text_content() == "after"
    assert same.get_attribute("data-rendered") == "1"
    assert pg.input_value("figure[data-chart-id=pts] select.nx-select") == "1"
    assert not page.console_errors and not page.page_errors
    page.close()


def test_the_controls_chart_drives_the_playground(browser, served):
    """The form is a controls chart: checkboxes and buttons reach the server through onInput."""
    base, _ = served
    tab = Tab(browser, base, base + "#n=200")
    pg = tab.page
    card = pg.query_selector("figure[data-chart-id=controls]")
    assert card.get_attribute("data-kind") == "controls"
    assert pg.text_content("button[data-key=play]").endswith("play")
    pg.check("input[data-key='feat.x1x2']")
    pg.wait_for_function("() => (document.documentElement.getAttribute('data-query') || '')"
                         ".includes('feat=x1,x2,x1x2')", timeout=30_000)
    names = pg.evaluate("() => window.netxray.payload().sections[0].charts"
                        ".find(c => c.id === 'network').layers[0].labels")
    assert names == ["x1", "x2", "x1\u00b7x2"]
    pg.check("input[data-key=disc]")  # drawing only: no new page, the link follows
    pg.wait_for_function("() => location.hash.includes('disc=1')", timeout=30_000)
    assert pg.is_checked("input[data-key=disc]")
    pg.click("button[data-key=play]")
    assert pg.text_content("button[data-key=play]").endswith("pause")
    tab.wait_epoch(2)
    tab.pause()
    assert pg.text_content("button[data-key=play]").endswith("play")
    assert pg.get_attribute("html", "data-playing") == "0"
    assert not tab.errors and not tab.blocked
    tab.close()
