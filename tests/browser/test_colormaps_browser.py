"""The page's colour maps, read back from drawn pixels: viridis is matplotlib's, and the
diverging map's ends and centre are the project's orange, white and blue."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import netxray.report
from netxray.report import charts, write_report
from netxray.report.packing import unpack

from ._page import Page

pytestmark = pytest.mark.browser

CORE_JS = Path(netxray.report.__file__).parent / "web" / "core.js"

#: JS: each tile canvas's colour at the centre of every cell of an (h, w) image, row-major
CELL_COLOURS = """([card, h, w]) => Array.from(card.querySelectorAll('canvas.nx-tile-canvas'), (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data, out = [];
    for (let r = 0; r < h; r++) for (let k = 0; k < w; k++) {
        const x = Math.floor((k + 0.5) * c.width / w), y = Math.floor((r + 0.5) * c.height / h);
        const o = (y * c.width + x) * 4;
        out.push([d[o], d[o + 1], d[o + 2]]);
    }
    return out;
})"""


def _palette(name: str) -> np.ndarray:
    """A design colour of core.js (NEG, MID, POS, MISSING): the values the map must hit."""
    m = re.search(rf"^var {name} = \[(\d+), (\d+), (\d+)\];", CORE_JS.read_text(), re.M)
    assert m, f"core.js no longer defines {name}"
    return np.array([int(g) for g in m.groups()], dtype=float)


def _drawn(page: Page, card: int, shape: tuple[int, int]) -> np.ndarray:
    el = page.page.query_selector_all("figure.nx-card")[card]
    return np.array(page.page.evaluate(CELL_COLOURS, [el, *shape])[0], dtype=float)


def test_viridis_is_matplotlibs_and_diverging_hits_its_palette(browser, tmp_path: Path) -> None:
    # viridis: t at the centre of 62 of matplotlib's 256 bins (no doubt which bin is meant),
    # with 0 and 1 in the image so its own range is [0, 1] and the page's t is the value
    bins = np.linspace(0, 255, 62).round()
    t = np.concatenate([[0.0], (2 * bins + 1) / 512, [1.0]]).reshape(1, 4, 16)
    div = np.array([[[-1.0, -0.5, 0.0, 0.5, 1.0, np.nan]]])
    grey = np.linspace(0.0, 1.0, 9).reshape(1, 1, 9)
    cards = [charts.images("viridis", t, cmap="viridis"),
             charts.images("diverging", div, cmap="diverging"),
             charts.images("gray", grey, cmap="gray"),
             charts.tokens("tokens", [["neg", "zero", "pos"]], [[-1.0, 0.0, 1.0]])]
    payload = {"title": "colour maps", "sections": [{"id": "c", "title": "C", "charts": cards}]}
    p = Page(browser, write_report(payload, tmp_path / "cmaps.html"), device_scale_factor=1)
    try:
        # viridis against matplotlib's own, at the values the page decoded (float16 packing)
        shown = unpack(cards[0]["images"])[0].ravel()
        got = _drawn(p, 0, (4, 16))
        want = matplotlib.colormaps["viridis"](shown)[:, :3] * 255
        # 1/255: the page draws 8-bit colours, and d3 keeps matplotlib's float table as 8-bit
        # hex (at most 0.5/255 off); a different table or bin is off by more (the old 9-stop
        # RGB approximation by up to 18/255)
        err = np.abs(got - want).max(1)
        assert err.max() <= 1.0, (shown[err.argmax()], got[err.argmax()], want[err.argmax()])

        neg, mid, pos, missing = (_palette(n) for n in ("NEG", "MID", "POS", "MISSING"))
        got = _drawn(p, 1, (1, 6))
        np.testing.assert_array_equal(got[[0, 2, 4]], [neg, mid, pos])  # -1, 0, 1: exact
        np.testing.assert_array_equal(got[5], missing)  # NaN
        # halfway: the linear RGB mix, within one level (the page rounds to 8 bits)
        assert np.abs(got[1] - (mid + neg) / 2).max() <= 1.0
        assert np.abs(got[3] - (mid + pos) / 2).max() <= 1.0

        # gray: white at the low end, darker at every step, every channel
        got = _drawn(p, 2, (1, 9))
        np.testing.assert_array_equal(got[0], [255, 255, 255])
        assert (np.diff(got, axis=0) < 0).all(), got

        # tokens shade their background through the same map: exact CSS colours at -1, 0, 1
        bg = p.page.eval_on_selector_all(
            "span.nx-tok", "(s) => s.map((e) => getComputedStyle(e).backgroundColor)")
        assert bg == [f"rgb({int(c[0])}, {int(c[1])}, {int(c[2])})" for c in (neg, mid, pos)]
        assert not p.page_errors and not p.console_errors and not p.blocked
    finally:
        p.close()
