"""Hover arrows on a decision surface (``surface(..., gradient=...)``) in Chromium.

A static report holds a surface with a known field on its own (coarser) grid: hovering draws,
from the cursor, the arrow of the nearest grid point, pointing the field's way and scaled by
its largest vector; the tooltip shows its value; leaving the plot removes it. The live
playground's output surface gets the same arrows.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from netxray.report import charts, write_report

from ._page import Page

pytestmark = pytest.mark.browser

GX, GY = np.linspace(-2, 2, 9), np.linspace(-1.5, 1.5, 7)  # the field's grid
DX = GX[None, :] + 0.5 * GY[:, None]                          # (7, 9): row j at GY[j]
DY = GY[:, None] - 0.8 * GX[None, :]
ARROW_FRAC = 0.18  # the longest arrow, as a fraction of the plot's width (charts-surface.js)


def _payload() -> dict:
    xs, ys = np.linspace(-2, 2, 41), np.linspace(-1.5, 1.5, 31)
    xx, yy = np.meshgrid(xs, ys)
    p1 = 1 / (1 + np.exp(-3 * (xx + yy)))
    probs = np.stack([1 - p1, p1], -1)
    field = {"x": GX, "y": GY, "dx": DX, "dy": DY, "label": "dP/dx"}
    return {"title": "arrows", "sections": [{"id": "s", "title": "S", "charts": [
        charts.surface("with arrows", xx, yy, probs, gradient=field, xlabel="x1", ylabel="x2"),
        charts.surface("without", xx, yy, probs),
    ]}]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return write_report(_payload(), tmp_path_factory.mktemp("arrows") / "r.html")


def _plot(pg, title):
    card = pg.locator("figure.nx-card", has=pg.locator("h3", has_text=re.compile(f"^{title}$")))
    return card.locator(".nx-plot").element_handle()


INK_AT = """([p, pts]) => { const c = p.querySelector('canvas.nx-overlay');
    const ctx = c.getContext('2d'), out = [];
    for (const [x, y] of pts) {   // any ink in a 3x3 patch around (x, y)
      const d = ctx.getImageData(Math.round(x) - 1, Math.round(y) - 1, 3, 3).data;
      let a = 0; for (let i = 3; i < d.length; i += 4) a = Math.max(a, d[i]); out.push(a);
    }
    const all = ctx.getImageData(0, 0, c.width, c.height).data; let n = 0;
    for (let i = 3; i < all.length; i += 4) if (all[i] > 0) n++;
    return [out, n]; }"""


@pytest.mark.parametrize("at", [(0.9, -1.1), (-1.6, 1.2), (0.2, 0.4)])
def test_hover_draws_the_nearest_grid_points_arrow_and_leaving_removes_it(browser, report, at):
    page = Page(browser, report, viewport={"width": 1300, "height": 1100}, device_scale_factor=1)
    try:
        pg = page.page
        plot = _plot(pg, "with arrows")
        plot.scroll_into_view_if_needed()
        box = plot.bounding_box()
        w = pg.evaluate("(p) => p.querySelector('canvas.nx-canvas').width", plot)
        side = w - 52 - 12  # the surface's square frame, 52 px from the left, 12 from the top
        mx, my = 52 + (at[0] + 2) / 4 * side, 12 + (1.5 - at[1]) / 3 * side
        pg.mouse.move(box["x"] + mx, box["y"] + my)
        pg.wait_for_function("(p) => p.hasAttribute('data-arrow')", arg=plot)
        i, j = int(np.abs(GX - at[0]).argmin()), int(np.abs(GY - at[1]).argmin())
        got = [float(v) for v in plot.get_attribute("data-arrow").split()]
        np.testing.assert_allclose(got, [GX[i], GY[j], DX[j, i], DY[j, i]], rtol=1e-3,
                                   atol=1e-3 * np.abs(DX).max())
        # drawn from the cursor along the field (x right, y up), to scale with the longest
        kx, ky = side / 4, -side / 3  # pixels per unit
        top = np.hypot(DX * kx, DY * ky).max()
        u = np.array([DX[j, i] * kx, DY[j, i] * ky]) * ARROW_FRAC * side / top
        assert np.hypot(*u) > 10
        along = [(mx + t * u[0], my + t * u[1]) for t in (0.3, 0.6, 0.9)]
        against = [(mx - t * u[0], my - t * u[1]) for t in (0.5, 0.9)]
        ink, n = pg.evaluate(INK_AT, [plot, along + against])
        assert min(ink[:3]) > 200, ink  # the shaft, as far as the tip
        assert max(ink[3:]) == 0, ink   # nothing behind the cursor
        tip = pg.text_content(".nx-tip")
        assert "dP/dx" in tip and "|gradient|" in tip
        # moving out of the plot removes it
        pg.mouse.move(box["x"] + box["width"] + 200, box["y"] + box["height"] + 50)
        pg.wait_for_function("(p) => !p.hasAttribute('data-arrow')", arg=plot)
        assert pg.evaluate(INK_AT, [plot, []])[1] == 0
        assert not page.console_errors and not page.page_errors
    finally:
        page.close()


def test_a_surface_without_a_field_draws_no_arrow(browser, report):
    page = Page(browser, report, viewport={"width": 1300, "height": 1100}, device_scale_factor=1)
    try:
        pg = page.page
        plot = _plot(pg, "without")
        plot.scroll_into_view_if_needed()
        box = plot.bounding_box()
        pg.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        pg.wait_for_selector(".nx-tip", state="visible")
        assert plot.get_attribute("data-arrow") is None
        assert "|gradient|" not in pg.text_content(".nx-tip")
    finally:
        page.close()


def test_the_playgrounds_output_surface_shows_the_input_gradient_on_hover(browser, tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from netxray.serve.settings import Limits
    from serve_helpers import serve_playground

    with serve_playground(tmp_path, Limits(max_sessions=1)) as (base, _):
        page = Page(browser, base, ready="figure[data-chart-id=surface][data-rendered='1']",
                    viewport={"width": 1400, "height": 1000})
        try:
            pg = page.page
            assert pg.query_selector("figure[data-chart-id=saliency]") is None
            plot = pg.locator("figure[data-chart-id=surface] .nx-plot").element_handle()
            plot.scroll_into_view_if_needed()
            box = plot.bounding_box()
            pg.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.4)
            pg.wait_for_function("(p) => p.hasAttribute('data-arrow')", arg=plot)
            x, y, dx, dy = (float(v) for v in plot.get_attribute("data-arrow").split())
            assert np.isfinite([x, y, dx, dy]).all() and (dx, dy) != (0.0, 0.0)
            assert "P(predicted)" in pg.text_content(".nx-tip")
            pg.mouse.move(5, 5)
            pg.wait_for_function("(p) => !p.hasAttribute('data-arrow')", arg=plot)
            assert not page.console_errors and not page.page_errors and not page.blocked
        finally:
            page.close()
