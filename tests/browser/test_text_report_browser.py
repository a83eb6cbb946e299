"""The Text section in a real Chromium: the tokens of each example sentence, shaded by their
scores, as text (user text is never HTML), and the top tokens per class."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from netxray.analysis import analyze_text
from netxray.report import write_text_analysis

from ._page import Page, assert_all_cards_rendered

pytestmark = pytest.mark.browser

#: token names, some of them HTML: the page must show them as text
VOCAB = ["[PAD]", "good", "bad", "<img src=x onerror=alert(1)>", "&amp;", "movie", "plot", "</script>"]


class Bag(nn.Module):
    """Mean of token embeddings over real tokens, then a linear layer: a text model in small."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(len(VOCAB), 6)
        self.fc = nn.Linear(6, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask[..., None].to(self.emb.weight.dtype)
        return self.fc((self.emb(input_ids) * m).sum(1) / m.sum(1))


def test_text_section_shows_each_token_as_text_with_its_score(browser, tmp_path) -> None:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, len(VOCAB), (24, 6), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 4:] = 0
    ids = ids.masked_fill(mask == 0, 0)
    data = {"input_ids": ids, "attention_mask": mask, "labels": torch.arange(24) % 2}
    t = analyze_text(Bag().eval(), data, vocab=VOCAB, n_examples=3, n_steps=16,
                     class_names=("neg", "pos"))
    path = write_text_analysis(t, tmp_path / "text.html")
    page = Page(browser, path, viewport={"width": 1300, "height": 900})
    try:
        pg = page.page
        assert assert_all_cards_rendered(page) >= 4  # examples, two classes' bars, the table
        rows = pg.query_selector_all("#s-text .nx-tok-row")
        assert len(rows) == 3
        for i, row in enumerate(rows):
            spans = row.query_selector_all("span.nx-tok")
            want = [VOCAB[int(j)] for j in ids[i][mask[i].bool()]]
            assert [s.inner_text() for s in spans] == want  # padding left out, text verbatim
            scores = [float(s.get_attribute("data-score")) for s in spans]
            np.testing.assert_allclose(scores, t.example_scores[i, : len(want)], rtol=1e-6)
            # the strongest token is the most saturated: farthest from the white background
            bg = [pg.evaluate("(e) => getComputedStyle(e).backgroundColor", s) for s in spans]
            rgb = [tuple(int(v) for v in b[b.index("(") + 1:-1].split(",")[:3]) for b in bg]
            dist = [sum(abs(250 - c) for c in px) for px in rgb]
            assert int(np.argmax(dist)) == int(np.argmax(np.abs(scores)))
        assert pg.query_selector("#s-text img") is None  # a token is never markup
        assert "<img src=x onerror=alert(1)>" in pg.inner_text("#s-text")
        # the table counts each token's occurrences per class (real tokens only)
        table = [[td.inner_text() for td in tr.query_selector_all("td")]
                 for tr in pg.query_selector_all("#s-text table tbody tr")]
        real = mask.bool()
        for cls, name, tid, count, *_ in table:
            rows_of_class = data["labels"] == ("neg", "pos").index(cls)
            assert name == VOCAB[int(tid)]
            assert int(count) == int((ids[rows_of_class][real[rows_of_class]] == int(tid)).sum())
        assert {r[0] for r in table} == {"neg", "pos"}
        assert page.console_errors == [] and page.page_errors == [] and page.blocked == []
    finally:
        page.close()
