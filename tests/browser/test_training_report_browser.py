"""The report of a watched run (`netxray report RUN`) in Chromium: the Training section's
charts all draw, offline, with no console errors, and the alarms show on the loss curve."""

from __future__ import annotations

import pytest

from netxray.run_analysis import write_run_report
from netxray.train_watch import train_watched

from ._page import Page, assert_all_cards_rendered

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def run_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("watched")
    result = train_watched(out / "dying", preset="dying_relu")
    assert result.raised, "the dying_relu preset raises dead-unit alarms"
    return write_run_report(result.path, out / "report.html"), result


def test_the_training_section_draws_every_chart(browser, run_report, tmp_path):
    path, result = run_report
    page = Page(browser, path, viewport={"width": 1400, "height": 1000})
    try:
        pg = page.page
        ids = [s.get_attribute("id") for s in pg.query_selector_all("section.nx-section")]
        assert ids == ["s-watch"]
        assert pg.query_selector("#s-watch h2").inner_text() == "Training"
        n = assert_all_cards_rendered(page)
        titles = [h.inner_text() for h in pg.query_selector_all("#s-watch figure h3")]
        for title in ["Loss, with the alarms", "Alarms", "Activity per layer",
                      "Gradient RMS by depth over training (log10)",
                      "act1: activation histogram over training",
                      "act2: unit activity, and when each unit died",
                      "The decision surface over training"]:
            assert title in titles
        assert n == len(titles) >= 12
        kinds = {c.get_attribute("data-kind") for c in pg.query_selector_all("figure.nx-card")}
        assert {"lines", "heatmap", "table", "slider"} <= kinds
        pg.screenshot(path=str(tmp_path / "training_report.png"), full_page=True)
        assert page.console_errors == [] and page.page_errors == []
        assert page.blocked == [], f"the report tried to reach {page.blocked}"
    finally:
        page.close()


def test_hovering_an_alarm_marker_shows_its_text(browser, run_report):
    path, result = run_report
    first = result.raised[0]
    page = Page(browser, path, viewport={"width": 1400, "height": 1000})
    try:
        pg = page.page
        card = pg.query_selector("figure.nx-kind-lines")
        assert card.query_selector("h3").inner_text() == "Loss, with the alarms"
        card.scroll_into_view_if_needed()
        box = card.query_selector(".nx-plot").bounding_box()
        texts = []
        for i in range(60):  # sweep the plot left to right until the marker's step is hovered
            pg.mouse.move(box["x"] + 58 + i * (box["width"] - 74) / 59, box["y"] + box["height"] / 2)
            tip = pg.query_selector(".nx-tip")
            if tip is not None and tip.is_visible():
                texts.append(tip.inner_text())
        hit = [t for t in texts if t.splitlines()[0].strip() == f"step = {first.step}"]
        assert hit, texts[:5]
        assert f"raised {first.kind} in {first.layer}" in hit[0]
        assert page.console_errors == [] and page.page_errors == []
    finally:
        page.close()
