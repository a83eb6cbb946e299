"""The d3 parts of the report in Chromium: zoom and pan on a projection, linked highlighting
between charts that show the same samples, and the boundary line drawn by d3-contour where
the model's two classes meet (checked against the boundary computed here)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from netxray.report import charts, write_report

from ._page import Page

pytestmark = pytest.mark.browser

BOUNDARY_X = 0.33  # the surface's classes meet on the line x = 0.33 (between grid columns)


def _payload() -> dict:
    rng = np.random.default_rng(0)
    n = 40
    X = rng.uniform(-1.8, 1.8, size=(n, 2))
    y = (X[:, 0] > BOUNDARY_X).astype(int)
    keep = np.arange(0, n, 2)  # the projection shows every other sample, named by index
    proj = X[keep] @ np.array([[0.8, -0.6], [0.6, 0.8]])
    xs = np.linspace(-2, 2, 41)
    xx, yy = np.meshgrid(xs, xs)
    p1 = 1 / (1 + np.exp(-4 * (xx - BOUNDARY_X)))
    probs = np.stack([1 - p1, p1], -1)
    pts = [{"x": X[i, 0], "y": X[i, 1], "label": int(y[i]), "marker": "train", "index": i}
           for i in range(n)]
    return {"title": "linked", "sections": [{"id": "s", "title": "S", "charts": [
        charts.scatter("projection", proj[:, 0], proj[:, 1], color_by={"class": y[keep].tolist()},
                       link="train", index=keep),
        charts.surface("surface", xx, yy, probs, points=pts, link={"train": "train"}),
        charts.surface("bare surface", xx, yy, probs),
        charts.table("samples", ["sample", "x"], [[int(i), float(X[i, 0])] for i in keep],
                     link="train", link_column=0),
    ]}]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return write_report(_payload(), tmp_path_factory.mktemp("link") / "r.html")


def _page(browser, report):
    return Page(browser, report, viewport={"width": 1300, "height": 1100}, device_scale_factor=1)


def _card(pg, title):
    return pg.locator("figure.nx-card", has=pg.locator("h3", has_text=re.compile(f"^{title}$")))


def _overlay_ink(pg, plot) -> int:
    """Non-transparent pixels on a plot's overlay canvas (hover marks)."""
    return pg.evaluate("""(p) => { const c = p.querySelector('canvas.nx-overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }""", plot)


def _hover_point(pg, card, k):
    """Move the mouse onto point k of a scatter card (its position from the renderer)."""
    plot = card.locator(".nx-plot").element_handle()
    plot.scroll_into_view_if_needed()
    xy = pg.evaluate("([p, k]) => p.nxPoint(k)", [plot, k])
    box = plot.bounding_box()
    pg.mouse.move(box["x"] + xy["x"], box["y"] + xy["y"])
    return plot


def test_hovering_a_projection_point_lights_it_up_elsewhere(browser, report):
    page = _page(browser, report)
    try:
        pg = page.page
        scatter, surface, table = (_card(pg, t) for t in ("projection", "surface", "samples"))
        splot = surface.locator(".nx-plot").element_handle()
        assert _overlay_ink(pg, splot) == 0
        _hover_point(pg, scatter, 3)  # point 3 of the projection is sample keep[3] = 6
        assert splot.get_attribute("data-linked") == "train:6"
        assert _overlay_ink(pg, splot) > 20  # a ring drawn around sample 6 on the surface
        ring = pg.evaluate("(p) => p.nxPoint(6)", splot)
        lit = pg.evaluate("""([p, x, y]) => { const c = p.querySelector('canvas.nx-overlay');
            const d = c.getContext('2d').getImageData(Math.round(x) - 9, Math.round(y), 1, 1).data;
            return d[3]; }""", [splot, ring["x"], ring["y"]])
        assert lit > 0  # the ring is around sample 6's own marker (radius ~8.5 px)
        row = table.locator("tr.nx-linked")
        assert row.count() == 1 and row.get_attribute("data-sample") == "6"
        _hover_point(pg, scatter, 5)  # sample 10
        assert splot.get_attribute("data-linked") == "train:10"
        assert table.locator("tr.nx-linked").get_attribute("data-sample") == "10"
        pg.mouse.move(5, 5)  # leaving clears every linked mark
        assert splot.get_attribute("data-linked") is None
        assert _overlay_ink(pg, splot) == 0 and table.locator("tr.nx-linked").count() == 0
        # and the other way: a table row, then a surface point, light up the projection
        table.locator('tr[data-sample="8"]').hover()
        assert scatter.locator(".nx-plot").get_attribute("data-linked") == "train:8"
        surface.scroll_into_view_if_needed()
        sample_7 = pg.evaluate("(p) => p.nxPoint(7)", splot)  # not in the projection
        box = splot.bounding_box()
        pg.mouse.move(box["x"] + sample_7["x"], box["y"] + sample_7["y"])
        assert scatter.locator(".nx-plot").get_attribute("data-linked") is None
        sample_4 = pg.evaluate("(p) => p.nxPoint(4)", splot)
        pg.mouse.move(box["x"] + sample_4["x"], box["y"] + sample_4["y"])
        assert scatter.locator(".nx-plot").get_attribute("data-linked") == "train:4"
        assert page.console_errors == [] and page.page_errors == [] and page.blocked == []
    finally:
        page.close()


def _base_pixels(pg, plot):
    return pg.evaluate("""(p) => { const c = p.querySelector('canvas.nx-canvas');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data
               .filter((_, i) => i % 97 === 0)); }""", plot)


def test_wheel_zooms_and_drag_pans_a_projection(browser, report):
    page = _page(browser, report)
    try:
        pg = page.page
        card = _card(pg, "projection")
        plot = card.locator(".nx-plot").element_handle()
        assert plot.get_attribute("data-zoom") == "1 0 0"
        reset = card.locator("button.nx-reset")
        assert reset.is_disabled()
        before, p0 = _base_pixels(pg, plot), pg.evaluate("(p) => p.nxPoint(0)", plot)
        box = plot.bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        pg.mouse.move(cx, cy)
        pg.mouse.wheel(0, -400)  # zoom in around the middle
        pg.wait_for_function("(p) => p.getAttribute('data-zoom') !== '1 0 0'", arg=plot)
        k = float(plot.get_attribute("data-zoom").split()[0])
        assert k > 1.5
        assert _base_pixels(pg, plot) != before  # redrawn, not just relabelled
        p1 = pg.evaluate("(p) => p.nxPoint(0)", plot)
        # a point moves away from the zoom centre by the zoom factor
        mx, my = cx - box["x"], cy - box["y"]
        assert abs((p1["x"] - mx) - k * (p0["x"] - mx)) < 1.5
        assert abs((p1["y"] - my) - k * (p0["y"] - my)) < 1.5
        # drag pans by the distance dragged
        pg.mouse.move(cx, cy)
        pg.mouse.down()
        pg.mouse.move(cx + 40, cy + 25, steps=5)
        pg.mouse.up()
        p2 = pg.evaluate("(p) => p.nxPoint(0)", plot)
        assert abs(p2["x"] - p1["x"] - 40) < 1.5 and abs(p2["y"] - p1["y"] - 25) < 1.5
        # hover still finds the point where it is now drawn, and links it
        _hover_point(pg, card, 0)
        assert _card(pg, "surface").locator(".nx-plot").get_attribute("data-linked") == "train:0"
        assert not reset.is_disabled()
        reset.click()
        assert plot.get_attribute("data-zoom") == "1 0 0"
        assert pg.evaluate("(p) => p.nxPoint(0)", plot) == p0
        pg.mouse.move(cx, cy)
        pg.mouse.wheel(0, -300)
        pg.wait_for_function("(p) => p.getAttribute('data-zoom') !== '1 0 0'", arg=plot)
        pg.mouse.dblclick(cx, cy)
        assert plot.get_attribute("data-zoom") == "1 0 0"
        assert page.console_errors == [] and page.page_errors == [] and page.blocked == []
    finally:
        page.close()


def test_the_zoom_survives_a_redraw(browser, report):
    page = _page(browser, report)
    try:
        pg = page.page
        plot = _card(pg, "projection").locator(".nx-plot").element_handle()
        box = plot.bounding_box()
        pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        pg.mouse.wheel(0, -300)
        pg.wait_for_function("(p) => p.getAttribute('data-zoom') !== '1 0 0'", arg=plot)
        zoom = plot.get_attribute("data-zoom")
        pg.evaluate("() => window.netxray.render(window.netxray.payload())")  # as live mode does
        again = _card(pg, "projection").locator(".nx-plot")
        assert again.get_attribute("data-zoom") == zoom
    finally:
        page.close()


def test_the_boundary_line_is_where_the_classes_meet(browser, report):
    page = _page(browser, report)
    try:
        pg = page.page
        plot = _card(pg, "bare surface").locator(".nx-plot").element_handle()
        w = pg.evaluate("(p) => p.querySelector('canvas.nx-canvas').width", plot)
        side = w - 52 - 12  # the surface's frame (charts-surface.js renderSurface)
        expected = 52 + (BOUNDARY_X + 2) / 4 * side
        # in each row of the frame, the darkest pixel is the boundary line
        cols = pg.evaluate("""([p, l, side]) => {
            const ctx = p.querySelector('canvas.nx-canvas').getContext('2d'), out = [];
            for (const t of [0.05, 0.5, 0.97]) {
              const y = Math.round(12 + t * side);
              const d = ctx.getImageData(l, y, side, 1).data;
              let best = -1, dark = 1e9;
              for (let i = 0; i < side; i++) {
                const s = d[4 * i] + d[4 * i + 1] + d[4 * i + 2];
                if (s < dark) { dark = s; best = i; }
              }
              out.push([l + best, dark]);
            }
            return out; }""", [plot, 52, side])
        for x, dark in cols:
            assert dark < 600, "no boundary line in this row"
            assert abs(x + 0.5 - expected) <= 1.5, (x, expected)
    finally:
        page.close()
