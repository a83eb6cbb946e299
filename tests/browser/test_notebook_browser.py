"""A health report as a notebook shows it: the executed dying-ReLU notebook, rendered by
nbconvert's JupyterLab template and opened offline in Chromium.

This is where docs/images/notebook_health.png comes from: with NETXRAY_UPDATE_SCREENSHOTS=1
the test writes its screenshot there (commit the new image).
"""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path

import pytest

from notebook_runner import ROOT, executed, findings, rich

from ._page import Page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENSHOT = ROOT / "docs" / "images" / "notebook_health.png"
#: a script that does nothing, in place of nbconvert's require.js and MathJax from a CDN:
#: the page must need no network (and the test refuses every outside request)
NO_SCRIPT = "data:text/javascript,"


def _health_page(nb, out: Path) -> Path:
    """The notebook from its start to the first cell that shows a HealthReport, as HTML."""
    nbconvert = pytest.importorskip("nbconvert")
    last = rich(nb, "HealthReport")[0][0]
    part = copy.deepcopy(nb)
    part.cells = part.cells[1:last + 1]  # the training cell on, without the title's prose
    exporter = nbconvert.HTMLExporter(
        template_name="lab", require_js_url=NO_SCRIPT, mathjax_url=NO_SCRIPT
    )
    body, _ = exporter.from_notebook_node(part)
    out.write_text(body, encoding="utf-8")
    return out


def test_health_report_in_a_notebook(browser, tmp_path: Path) -> None:
    nb = executed("dying_relu.ipynb")
    html = rich(nb, "HealthReport")[0][1]["text/html"]
    expected = findings(html)
    assert ("error", "dead_units", "act2") in expected

    page = Page(browser, _health_page(nb, tmp_path / "notebook.html"), ready=".nx-r",
                viewport={"width": 1000, "height": 300}, device_scale_factor=1)
    try:
        pg = page.page
        # the findings lead, one table row each, in the report's order
        rows = pg.query_selector_all(".nx-r > table tr")[1:]
        shown = [tuple(td.inner_text().strip() for td in r.query_selector_all("td")[:3])
                 for r in rows]
        assert shown == [tuple(f) for f in expected]
        # the severity badge is styled (the notebook's CSS did not override it)
        badge = pg.query_selector(".nx-sev.nx-error")
        assert badge.is_visible()
        colour = pg.evaluate("(e) => getComputedStyle(e).backgroundColor", badge)
        assert colour == "rgb(198, 40, 40)"
        # the per-layer table is folded below the findings
        details = pg.query_selector(".nx-r details")
        assert details is not None and not details.evaluate("(d) => d.open")
        assert "45 of 64 units in `act2` never activate" in pg.inner_text(".nx-r")
        assert page.console_errors == [] and page.page_errors == []
        assert page.blocked == [], f"the notebook page tried to reach {page.blocked}"

        shot = tmp_path / "notebook_health.png"
        pg.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        if os.environ.get("NETXRAY_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(shot, SCREENSHOT)
    finally:
        page.close()
