"""The "What the model relies on" section in a real Chromium: the story cards, the shaded
example resumes and the table of decisions that flipped when only the gendered word changed."""

from __future__ import annotations

import pytest

from netxray import text_demo

from ._page import Page, assert_all_cards_rendered

pytestmark = pytest.mark.browser


def test_biased_resumes_report_tells_the_story(browser, tmp_path) -> None:
    d = text_demo.run("biased_resumes")
    path = text_demo.write_outputs(d, tmp_path)
    cf = d.analysis.counterfactual
    page = Page(browser, path, viewport={"width": 1300, "height": 900})
    try:
        pg = page.page
        assert assert_all_cards_rendered(page) >= 7  # story, examples, 2 bars, 3 tables
        assert pg.inner_text("#s-text h2") == "What the model relies on"
        cards = pg.query_selector_all("#s-text .nx-finding")
        texts = [c.query_selector(".nx-finding-text").inner_text() for c in cards]
        assert len(cards) == 3 and texts[0].startswith("Accuracy above the base rate")
        assert "women's" in texts[1] and f"{cf.flip_rate:.1%}" in texts[2]
        assert "nx-sev-error" in cards[2].get_attribute("class")
        # the example resumes, token by token, as text
        rows = pg.query_selector_all("#s-text .nx-tok-row")
        assert len(rows) == len(d.analysis.examples)
        for row, toks in zip(rows, d.analysis.examples, strict=True):
            assert [s.inner_text() for s in row.query_selector_all("span.nx-tok")] == list(toks)
        # the flipped decisions: the texts differ only in the gendered word
        tables = pg.query_selector_all("#s-text figure.nx-card[data-kind=table]")
        flipped = [[td.inner_text() for td in tr.query_selector_all("td")]
                   for tr in tables[-1].query_selector_all("tbody tr")]
        assert len(flipped) == min(30, cf.n_flipped)
        for original, swapped, before, after, *_ in flipped:
            assert {before, after} == {"reject", "hire"}
            a, b = original.split(), swapped.split()
            diff = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
            assert diff in ([("women's", "men's")], [("men's", "women's")])
        assert page.console_errors == [] and page.page_errors == [] and page.blocked == []
    finally:
        page.close()
