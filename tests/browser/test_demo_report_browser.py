"""The report `netxray demo` writes, opened offline in Chromium: every section draws, no errors."""

from __future__ import annotations

import pytest

from netxray import demo

from ._page import Page, assert_all_cards_rendered

pytestmark = pytest.mark.browser

SECTIONS = ["health", "training", "boundary", "units", "activations", "representations",
            "saliency"]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return demo.write_outputs(demo.run(), out)


def test_demo_report_renders_every_section_offline(browser, demo_report, tmp_path):
    page = Page(browser, demo_report, viewport={"width": 1400, "height": 1000})
    try:
        pg = page.page
        ids = [s.get_attribute("id") for s in pg.query_selector_all("section.nx-section")]
        assert ids == [f"s-{name}" for name in SECTIONS]
        n = assert_all_cards_rendered(page)
        assert n >= 10
        kinds = {c.get_attribute("data-kind") for c in pg.query_selector_all("figure.nx-card")}
        assert {"surface", "thumbnails", "heatmap", "scatter", "lines", "findings",
                "slider"} <= kinds
        # dead units are marked on the unit thumbnails when the health check found any
        pg.screenshot(path=str(tmp_path / "demo_report.png"), full_page=True)
        assert page.console_errors == [] and page.page_errors == []
        assert page.blocked == [], f"the report tried to reach {page.blocked}"
    finally:
        page.close()


def test_a_projection_point_lights_up_on_the_decision_boundary(browser, demo_report):
    """The demo links its projections (training samples) to the boundary's training points."""
    page = Page(browser, demo_report, viewport={"width": 1400, "height": 1000})
    try:
        pg = page.page
        scatter = pg.query_selector("#s-representations figure.nx-kind-scatter .nx-plot")
        boundary = pg.query_selector("#s-boundary figure.nx-kind-surface .nx-plot")
        scatter.scroll_into_view_if_needed()
        xy = pg.evaluate("(p) => p.nxPoint(0)", scatter)
        box = scatter.bounding_box()
        pg.mouse.move(box["x"] + xy["x"], box["y"] + xy["y"])
        linked = boundary.get_attribute("data-linked")
        assert linked is not None and linked.startswith("train:")
        # the lit sample is the one under the mouse: its tooltip names the same index
        assert pg.query_selector(".nx-tip-title").inner_text() == "train sample #" + linked[6:]
        pg.mouse.move(2, 2)
        assert boundary.get_attribute("data-linked") is None
        assert page.console_errors == [] and page.page_errors == []
    finally:
        page.close()
