"""Results show themselves: a short repr in the terminal, bounded self-contained HTML in Jupyter."""

import html
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

import netxray
from netxray.notebook import MAX_ROWS, sparkline
from test_results import _NAMES, _result


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


def _parse(text: str) -> _Tags:
    p = _Tags()
    p.feed(text)
    return p


@pytest.mark.parametrize("name", _NAMES)
def test_every_result_has_a_short_repr_and_self_contained_html(name):
    r = _result(name)
    text = repr(r)
    assert text.startswith(f"{name}(") and len(text) < 2000
    assert "\n" not in text  # arrays are summarised, never printed
    page = r._repr_html_()
    tags = _parse(page)
    assert "script" not in tags.tags and "iframe" not in tags.tags
    urls = [v for k, v in tags.attrs if k in ("src", "href") and v]
    assert all(u.startswith("data:image/png;base64,") for u in urls)
    assert "no picture" not in page
    assert len(page) < 300_000


def test_health_report_html_leads_with_its_findings_and_folds_the_layer_table():
    r = _result("HealthReport")
    page = r._repr_html_()
    first = r.findings[0]
    assert page.index(html.escape(first.advice)) < page.index("<details>")
    assert f"nx-{first.severity}" in page and html.escape(first.kind) in page
    for row in r.layer_table():  # every layer appears in the folded table
        assert f"<td>{row['layer']}</td>" in page


def test_layer_statistics_show_numbers_from_the_result_and_histogram_sparklines():
    stats = netxray.collect_stats(netxray.mlp([3, 4, 2], seed=0).eval(),
                                  torch.randn(50, 3), bins=8)
    s = stats["act1"]
    page = s._repr_html_()
    assert f"{s.scale:.3g}" in page
    assert page.count("<svg") == 1 + s.units  # the layer's histogram and each unit's
    table = stats._repr_html_()
    assert "act1" in table and f"{stats.n_samples} samples" in table


def test_sparkline_bar_heights_follow_the_counts():
    svg = sparkline(np.array([0, 2, 4]), width=30, height=10)
    heights = [float(h) for h in re.findall(r'height="([\d.]+)"/>', svg)]
    assert heights == [5.0, 10.0]  # the empty bin draws nothing; 2/4 of the height, then all


def test_user_strings_are_escaped():
    from netxray.health import Finding

    f = Finding(kind="dead_units", severity="error", layer="<img src=x onerror=alert(1)>",
                units=(1,), evidence={}, advice="<b>bold</b>")
    page = f._repr_html_()
    assert "<img src=x" not in page and "&lt;img src=x" in page and "<b>bold" not in page


def test_a_large_projection_is_drawn_not_dumped():
    coords = np.random.default_rng(0).normal(size=(50_000, 2)).astype(np.float32)
    proj = netxray.project(coords, "pca", n_components=2)
    page = proj._repr_html_()
    assert len(page) < 150_000 and "50000 points" in page


def test_long_tables_are_cut_with_a_note():
    stats = netxray.collect_stats(netxray.mlp([3, MAX_ROWS + 6, 2], seed=0).eval(),
                                  torch.randn(20, 3), bins=4)
    page = stats["act1"]._repr_html_()
    assert "... and 6 more units" in page


def test_token_attributions_show_one_row_of_scores_per_sequence():
    from netxray.attribution import Attribution

    values = torch.zeros(2, 5, 4)
    values[0, 1] = 1.0  # token 1 of sequence 0 scores 4 (summed over the embedding)
    r = Attribution(values=values, inputs=torch.zeros(2, 5, dtype=torch.long), target=None,
                    delta=None, method="layer_integrated_gradients", params={},
                    mask=torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool))
    page = r._repr_html_()
    assert "token scores" in page and "padding at 0" in page and page.count("<img") == 1
    assert r.token_scores()[0, 1] == 4.0


def test_datasets_and_report_bundles_show_themselves_too():
    from netxray import data
    from netxray.analysis import analyze

    train, test = data.moons(n_samples=60, noise=0.2, seed=0).split(test_size=0.25, seed=0)
    bundle = analyze(netxray.mlp([2, 4, 2], seed=0).eval(), train, test, progress=False)
    for r in (train, bundle):
        page = r._repr_html_()
        assert f"<b>{type(r).__name__}</b>" in page and "<script" not in page
        assert repr(r).startswith(f"{type(r).__name__}(") and "\n" not in repr(r)
    assert "array(float64, (45, 2))" in train._repr_html_()  # X summarised, not dumped


def test_unit_maps_of_a_wide_layer_draw_the_first_units_only():
    from netxray.models import mlp
    from netxray.notebook import MAX_UNIT_MAPS

    torch.manual_seed(0)
    model = mlp([2, 64, 8, 2], "relu").eval()
    X = torch.randn(50, 2)
    r = netxray.unit_maps(model, X, resolution=12)
    assert max(m.shape[0] for m in r.maps.values()) == 64 > MAX_UNIT_MAPS
    page = r._repr_html_()
    assert "no picture" not in page
    assert f"Showing the first {MAX_UNIT_MAPS} units" in page and ": 64" in page
    assert len(page) < 300_000


def test_image_attributions_show_as_images_not_as_token_rows():
    """A saliency map of images (batch, C, H, W) has no tokens: the notebook shows heatmaps
    over the images (channels summed), and token_scores() refuses it instead of summing
    each channel as if it were a token."""
    from netxray.attribution import Attribution

    x = torch.randn(2, 3, 6, 6)
    r = Attribution(values=torch.randn(2, 3, 6, 6), inputs=x, target=torch.tensor([0, 1]),
                    delta=None, method="saliency", params={})
    assert not r.of_tokens
    page = r._repr_html_()
    assert "token scores" not in page and "no picture" not in page and page.count("<img") == 1
    with pytest.raises(ValueError, match="images"):
        r.token_scores()


def test_a_layer_attribution_over_token_ids_is_one_of_tokens_without_a_mask():
    from netxray.attribution import Attribution

    ids = torch.tensor([[3, 4, 5], [6, 7, 8]])
    values = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    r = Attribution(values=values, inputs=ids, target=None, delta=None,
                    method="layer_integrated_gradients", layer="emb", params={})
    assert r.of_tokens
    np.testing.assert_array_equal(r.token_scores().numpy(), values.numpy().sum((2, 3)))
    assert "token scores" in r._repr_html_()
