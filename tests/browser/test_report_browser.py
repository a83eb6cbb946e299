"""The HTML report in a real Chromium: every chart kind draws, offline, without errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from netxray.report import charts, write_report

from ._page import CANVAS_VARIETY, Page

pytestmark = pytest.mark.browser


# ----------------------------------------------------------------------------- synthetic run


def _moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    return make_moons(n_samples=n, noise=0.2, random_state=seed)


class _TinyNet:
    """A 2-10-2 ReLU MLP in NumPy (fast and thread-free; the report only needs its numbers)."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.W1 = rng.normal(0, np.sqrt(2 / 2), (2, 10))
        self.b1 = np.zeros(10)
        self.W2 = rng.normal(0, np.sqrt(2 / 10), (10, 2))
        self.b2 = np.zeros(2)

    def hidden(self, X: np.ndarray) -> np.ndarray:
        return np.maximum(X @ self.W1 + self.b1, 0.0)

    def probs(self, X: np.ndarray) -> np.ndarray:
        z = self.hidden(X) @ self.W2 + self.b2
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def loss(self, X: np.ndarray, y: np.ndarray) -> float:
        return float(-np.log(self.probs(X)[np.arange(len(y)), y] + 1e-12).mean())

    def acc(self, X: np.ndarray, y: np.ndarray) -> float:
        return float((self.probs(X).argmax(1) == y).mean())

    def step(self, X: np.ndarray, y: np.ndarray, lr: float) -> None:
        h = self.hidden(X)
        d = self.probs(X)
        d[np.arange(len(y)), y] -= 1
        d /= len(y)
        dh = (d @ self.W2.T) * (h > 0)
        self.W2 -= lr * h.T @ d
        self.b2 -= lr * d.sum(0)
        self.W1 -= lr * X.T @ dh
        self.b1 -= lr * dh.sum(0)

    def input_grad(self, X: np.ndarray) -> np.ndarray:
        """d P(class 1) / d x, (n, 2)."""
        h = self.hidden(X)
        p = self.probs(X)
        dz = -p[:, 1:2] * p
        dz[:, 1] += p[:, 1]
        return ((dz @ self.W2.T) * (h > 0)) @ self.W1.T


def make_payload() -> dict:
    """A small trained 2-10-2 ReLU net on moons, shown through every chart kind."""
    X, y = _moons(160, 0)
    Xt, yt = _moons(60, 1)
    net = _TinyNet(0)
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    gx, gy = np.linspace(lo[0], hi[0], 60), np.linspace(lo[1], hi[1], 60)
    xx, yy = np.meshgrid(gx, gy)
    grid = np.stack([xx.ravel(), yy.ravel()], 1)
    hist: dict[str, list[float]] = {
        k: [] for k in ("train loss", "test loss", "train acc", "test acc")
    }
    frames, frame_labels = [], []
    for epoch in range(1, 61):
        for _ in range(5):
            net.step(X, y, lr=0.3)
        hist["train loss"].append(net.loss(X, y))
        hist["test loss"].append(net.loss(Xt, yt))
        hist["train acc"].append(net.acc(X, y))
        hist["test acc"].append(net.acc(Xt, yt))
        if epoch % 10 == 0:
            probs = net.probs(grid).reshape(60, 60, 2)
            frames.append(charts.surface(f"epoch {epoch}", xx, yy, probs, class_names=["a", "b"]))
            frame_labels.append(f"epoch {epoch}")
    epochs = np.arange(1, 61)
    points = [
        {"x": float(a), "y": float(b), "label": int(c), "marker": "train", "index": i}
        for i, (a, b, c) in enumerate(zip(X[:, 0], X[:, 1], y, strict=True))
    ] + [
        {"x": float(a), "y": float(b), "label": int(c), "marker": "test"}
        for a, b, c in zip(Xt[:, 0], Xt[:, 1], yt, strict=True)
    ]
    g = net.input_grad(Xt[:25])
    arrows = [
        {"x": float(a), "y": float(b), "dx": float(c), "dy": float(d)}
        for (a, b), (c, d) in zip(Xt[:25], g, strict=True)
    ]
    probs = net.probs(grid).reshape(60, 60, 2)
    hidden = net.hidden(X)
    unit_maps = net.hidden(grid).T.reshape(10, 60, 60)
    pred = net.probs(X).argmax(1)
    unit_maps[3] = 0.0  # one dead unit, to be marked
    dead = [bool(np.all(m == 0)) for m in unit_maps]
    centred = hidden - hidden.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    pc = centred @ vt[:2].T
    from sklearn.datasets import load_digits

    digits = load_digits()
    imgs = digits.images[:10] / 16.0
    saliency = imgs - imgs.mean(0)
    payload = {
        "title": "moons \u2014 2-10-2 ReLU MLP",
        "subtitle": "A small network trained on make_moons, seen from the inside. <b>not bold</b>",
        "meta": {"epochs": 60, "optimizer": "sgd", "lr": 0.3, "test acc": hist["test acc"][-1]},
        "sections": [
            {
                "id": "findings",
                "title": "Findings",
                "description": "What looks wrong, in plain words.",
                "charts": [
                    charts.findings(
                        "Diagnosis",
                        [
                            {
                                "severity": "error",
                                "kind": "dead_units",
                                "layer": "act1",
                                "text": "1 of 10 units never activates on the training data.",
                                "advice": "Lower the learning rate or use LeakyReLU.",
                                "units": [3],
                                "evidence": {"fraction_dead": 0.1},
                            },
                            {
                                "severity": "warning",
                                "kind": "overfitting",
                                "layer": "",
                                "text": "Test loss rises while train loss falls. </script><b>x</b>",
                                "advice": "Stop earlier or add weight decay.",
                            },
                            {
                                "severity": "info",
                                "kind": "note",
                                "text": "Inputs are standardized.",
                            },
                        ],
                    ),
                    charts.findings("Clean layer", []),
                ],
            },
            {
                "id": "training",
                "title": "Training",
                "description": "Loss and accuracy per epoch.",
                "charts": [
                    charts.lines(
                        "Loss",
                        epochs,
                        {"train loss": hist["train loss"], "test loss": hist["test loss"]},
                        xlabel="epoch",
                        ylabel="cross-entropy",
                        log_y=True,
                        dashed=["test loss"],
                    ),
                    charts.lines(
                        "Accuracy",
                        epochs,
                        {"train": hist["train acc"], "test": hist["test acc"]},
                        xlabel="epoch",
                        ylabel="accuracy",
                        dashed=["test"],
                    ),
                ],
            },
            {
                "id": "boundary",
                "title": "Decision boundary",
                "description": "What the network predicts over the input plane.",
                "charts": [
                    charts.surface(
                        "Decision surface",
                        xx,
                        yy,
                        probs,
                        points=points,
                        class_names=["moon A", "moon B"],
                        xlabel="x1",
                        ylabel="x2",
                    ),
                    charts.surface(
                        "Saliency arrows",
                        gx,
                        gy,
                        probs,
                        points=points[160:185],
                        arrows=arrows,
                        class_names=["moon A", "moon B"],
                        xlabel="x1",
                        ylabel="x2",
                    ),
                    charts.slider("Surface over training", frames, frame_labels),
                    charts.thumbnails(
                        "Hidden units (act1)",
                        unit_maps,
                        labels=[f"act1[{i}]" for i in range(10)],
                        marked=dead,
                        extent=[lo[0], hi[0], lo[1], hi[1]],
                    ),
                ],
            },
            {
                "id": "representations",
                "title": "Representations",
                "description": "The hidden layer's activations.",
                "charts": [
                    charts.scatter(
                        "PCA of act1",
                        pc[:, 0],
                        pc[:, 1],
                        color_by={
                            "class": y,
                            "correct": np.where(pred == y, "correct", "wrong"),
                            "unit 0": hidden[:, 0],
                        },
                        class_names=["moon A", "moon B"],
                        xlabel="PC 1",
                        ylabel="PC 2",
                    ),
                    charts.bars(
                        "Output weights, class B minus class A",
                        [f"act1[{i}]" for i in range(10)],
                        net.W2[:, 1] - net.W2[:, 0],
                        xlabel="weight",
                    ),
                    charts.heatmap(
                        "Activations (first 40 samples)",
                        hidden[:40],
                        col_labels=[f"u{i}" for i in range(10)],
                        row_groups=y[:40],
                        group_names=["moon A", "moon B"],
                        xlabel="unit",
                        ylabel="sample",
                    ),
                    charts.table(
                        "Per-layer summary",
                        ["layer", "units", "dead", "mean"],
                        [["act1", 10, int(sum(dead)), float(hidden.mean())], ["fc2", 2, 0, None]],
                    ),
                ],
            },
            {
                "id": "attribution",
                "title": "Attribution",
                "description": "Digits and a signed map for each.",
                "charts": [
                    charts.images("Digits", imgs, labels=[str(t) for t in digits.target[:10]]),
                    charts.tokens("Tokens", [["the", "<b>digit</b>", "&amp;"]], [[0.2, -1.0, 0.7]],
                                  row_labels=["label 3"]),
                    charts.network("Network", [
                        {"name": "input", "maps": np.random.default_rng(1).normal(size=(2, 6, 6))},
                        {"name": "act1", "maps": np.random.default_rng(2).normal(size=(3, 6, 6)),
                         "dead": [True, False, False], "saturated": [False, True, False]},
                        {"name": "output", "maps": np.random.default_rng(3).normal(size=(2, 6, 6))},
                    ], [np.ones((3, 2)), -np.ones((2, 3))]),
                    charts.controls("Setup", [
                        {"key": "act", "label": "activation", "type": "select", "value": "relu",
                         "options": [("relu", "ReLU"), ("tanh", "tanh")]},
                        {"key": "go", "label": "go", "type": "button"}], id="setup"),
                    charts.images(
                        "Saliency",
                        saliency,
                        labels=[f"class {t}" for t in range(10)],
                        cmap="diverging",
                    ),
                ],
            },
        ],
    }
    return payload


@pytest.fixture(scope="module")
def payload() -> dict:
    return make_payload()


@pytest.fixture(scope="module")
def report_file(payload: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(payload, tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture
def page(browser, report_file: Path):
    p = Page(browser, report_file, viewport={"width": 1400, "height": 1000})
    yield p
    p.close()


def _n_charts(payload: dict) -> int:
    return sum(len(s["charts"]) for s in payload["sections"])




def test_every_chart_renders_offline_without_errors(page: Page, payload: dict) -> None:
    pg = page.page
    cards = pg.query_selector_all("figure.nx-card")
    assert len(cards) == _n_charts(payload)
    kinds = {c.get_attribute("data-kind") for c in cards}
    assert kinds == set(charts.KINDS), "the test payload must hold every chart kind"
    for card in cards:
        kind = card.get_attribute("data-kind")
        assert card.get_attribute("data-rendered") == "1", card.get_attribute("data-error")
        assert card.query_selector(".nx-error") is None
        if kind in ("table", "findings"):
            assert card.query_selector("table tbody tr, .nx-finding") is not None
            continue
        if kind == "tokens":  # text, not a canvas
            assert card.query_selector("span.nx-tok") is not None
            continue
        if kind == "controls":  # a form, not a canvas
            assert card.query_selector("select[data-key=act]") is not None
            continue
        variety = pg.evaluate(CANVAS_VARIETY, card)
        assert variety, f"{kind} drew no canvas"
        assert max(variety) > 8, f"{kind} canvas is blank: {variety}"
    # one section per payload section, with nav links
    assert len(pg.query_selector_all("section.nx-section")) == len(payload["sections"])
    assert len(pg.query_selector_all("a.nx-nav-link")) == len(payload["sections"])
    # text from the payload is text, never HTML
    assert pg.query_selector(".nx-subtitle b") is None
    assert "</script><b>x</b>" in pg.inner_text(".nx-findings")
    assert page.console_errors == []
    assert page.page_errors == []
    assert page.blocked == []


def test_dead_units_are_marked(page: Page, payload: dict) -> None:
    spec = next(c for s in payload["sections"] for c in s["charts"] if c["kind"] == "thumbnails")
    dead = [i for i, m in enumerate(spec["marked"]) if m]
    assert 3 in dead  # the unit the test killed
    tiles = page.page.query_selector_all(".nx-kind-thumbnails .nx-tile")
    assert len(tiles) == len(spec["marked"])
    for i, tile in enumerate(tiles):
        assert ("nx-marked" in tile.get_attribute("class")) == (i in dead)
        assert (tile.query_selector(".nx-badge") is not None) == (i in dead)
    assert tiles[3].query_selector(".nx-badge").inner_text().lower() == "dead"


def _hover(pg, kind: str, point: int | None = None):
    """Scroll the first ``kind`` chart into view and hover its data point ``point`` (the
    plot's centre if None); returns the chart's card and the visible tooltip."""
    card = pg.query_selector(f".nx-kind-{kind}")
    card.scroll_into_view_if_needed()
    plot = card.query_selector(".nx-plot")
    box = plot.bounding_box()
    if point is None:
        x, y = box["width"] / 2, box["height"] / 2
    else:
        pt = pg.evaluate(f"(el) => el.nxPoint({point})", plot)
        x, y = pt["x"], pt["y"]
    pg.mouse.move(box["x"] + x, box["y"] + y)
    return card, pg.wait_for_selector(".nx-tip", state="visible")


def test_scatter_tooltip_and_colour_selector(page: Page) -> None:
    card, tip = _hover(page.page, "scatter", 7)
    assert "#7" in tip.inner_text()
    before = card.query_selector("canvas.nx-canvas").evaluate("c => c.toDataURL()")
    legend_before = card.query_selector(".nx-controls").inner_text()
    card.query_selector("select.nx-select").select_option(label="correct")
    after = card.query_selector("canvas.nx-canvas").evaluate("c => c.toDataURL()")
    assert after != before
    legend = card.query_selector(".nx-controls").inner_text()
    assert "wrong" in legend and "wrong" not in legend_before
    card.query_selector("select.nx-select").select_option(label="unit 0")
    assert card.query_selector(".nx-colorbar") is not None
    assert page.console_errors == [] and page.page_errors == []


def test_slider_changes_frame(page: Page, payload: dict) -> None:
    pg = page.page
    card = pg.query_selector(".nx-kind-slider")
    card.scroll_into_view_if_needed()
    label = card.query_selector(".nx-frame-label")
    assert label.inner_text() == "epoch 60"  # starts at the last frame
    before = card.query_selector(".nx-stage canvas.nx-canvas").evaluate("c => c.toDataURL()")
    card.query_selector("input.nx-range").fill("0")
    assert label.inner_text() == "epoch 10"
    after = card.query_selector(".nx-stage canvas.nx-canvas").evaluate("c => c.toDataURL()")
    assert after != before
    card.query_selector("input.nx-range").press("ArrowRight")
    assert label.inner_text() == "epoch 20"
    assert page.console_errors == [] and page.page_errors == []


def test_surface_and_lines_tooltips(page: Page) -> None:
    text = _hover(page.page, "surface", 5)[1].inner_text()
    assert "train point #" in text and "P(moon A)" in text
    text = _hover(page.page, "lines")[1].inner_text()
    assert "epoch =" in text and "train loss" in text


def test_table_sorts(page: Page) -> None:
    pg = page.page
    card = pg.query_selector(".nx-kind-table")
    first = lambda: card.query_selector("tbody tr td").inner_text()  # noqa: E731
    assert first() == "act1"
    card.query_selector("th").click()  # layer, ascending
    card.query_selector("th").click()  # descending
    assert first() == "fc2"


def test_hidpi_canvases_are_crisp(browser, report_file: Path) -> None:
    p = Page(browser, report_file, viewport={"width": 1200, "height": 900}, device_scale_factor=2)
    try:
        c = p.page.query_selector(".nx-kind-lines canvas.nx-canvas")
        w, css = c.evaluate("c => [c.width, c.getBoundingClientRect().width]")
        assert w == pytest.approx(2 * css, abs=1)
        assert p.console_errors == [] and p.page_errors == [] and p.blocked == []
    finally:
        p.close()


def test_narrow_window_still_renders(browser, report_file: Path, payload: dict) -> None:
    p = Page(browser, report_file, viewport={"width": 420, "height": 800})
    try:
        assert len(p.page.query_selector_all("figure[data-rendered='1']")) == _n_charts(payload)
        p.page.set_viewport_size({"width": 900, "height": 800})
        p.page.wait_for_timeout(400)  # the debounced redraw
        widths = p.page.eval_on_selector(".nx-kind-lines canvas.nx-canvas", "c => c.clientWidth")
        assert widths > 300
        assert p.console_errors == [] and p.page_errors == []
    finally:
        p.close()


def test_broken_chart_shows_error_and_spares_the_rest(page: Page) -> None:
    pg = page.page
    pg.evaluate(
        """() => netxrayRender({title: "t", sections: [{id: "a", title: "A", charts: [
            {kind: "lines", title: "broken"},
            {kind: "nope", title: "unknown"},
            {kind: "bars", title: "fine", labels: ["x", "y"], values: [1, -2], signed: true}]}]})"""
    )
    cards = pg.query_selector_all("figure.nx-card")
    assert len(cards) == 3
    assert cards[0].query_selector(".nx-error") is not None
    assert "unknown chart kind" in cards[1].inner_text()
    assert cards[2].get_attribute("data-rendered") == "1"
    assert len(page.console_errors) == 2
    assert page.page_errors == []


def test_netxray_render_redraws_with_new_data(page: Page, payload: dict) -> None:
    pg = page.page
    small = {"title": "live", "sections": [payload["sections"][1]]}
    pg.evaluate("(p) => window.netxrayRender(p)", small)
    assert pg.inner_text(".nx-title") == "live"
    assert len(pg.query_selector_all("figure[data-rendered='1']")) == len(
        small["sections"][0]["charts"]
    )
    assert page.console_errors == [] and page.page_errors == []


def _wait_for_title(pg, title: str, timeout_s: float = 10.0) -> None:
    # (wait_for_function evaluates a string, which the page's CSP rightly forbids)
    deadline = time.monotonic() + timeout_s
    while pg.inner_text(".nx-title") != title:
        assert time.monotonic() < deadline, f"the page never showed {title!r}"
        pg.wait_for_timeout(50)


def test_live_mode_polls_the_same_json(browser, payload: dict) -> None:
    from netxray.report import payload_json, render_html

    # the live server serves the page and the JSON from one origin; fake both here
    page_url = "http://netxray.invalid/"
    url = "http://netxray.invalid/api/payload"
    html = render_html(payload, live_url="/api/payload", poll_s=0.2)
    served = {"body": payload_json({"title": "second", "sections": []})}
    context = browser.new_context()
    try:
        seen: list[str] = []

        def route(r) -> None:
            seen.append(r.request.url)
            if r.request.url == page_url:
                r.fulfill(status=200, content_type="text/html", body=html)
            elif r.request.url == url:
                r.fulfill(status=200, content_type="application/json", body=served["body"])
            else:
                r.abort()

        context.route("**/*", route)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(page_url)
        _wait_for_title(pg, "second")
        served["body"] = json.dumps({"title": "third", "sections": []})
        _wait_for_title(pg, "third")
        assert set(seen) == {page_url, url}
        assert errors == []
    finally:
        context.close()


def edge_payload() -> dict:
    """Degenerate but valid inputs: one point, constant data, gaps, 3 classes, empty lists."""
    rng = np.random.default_rng(1)
    g = np.linspace(-1, 1, 12)
    xx, yy = np.meshgrid(g, g)
    logits = np.stack([xx, yy, -xx - yy], -1) * 3
    p3 = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    nan = float("nan")
    return {
        "title": "edge cases",
        "sections": [
            {
                "id": "edge",
                "title": "Edge cases",
                "charts": [
                    charts.lines("one point", [1], {"a": [0.5]}),
                    charts.lines("all gaps", [1, 2, 3], {"a": [nan, nan, nan]}, log_y=True),
                    charts.lines("zeros on log", [1, 2, 3], {"a": [0.0, 1e-3, 1e3]}, log_y=True),
                    charts.heatmap("1x1", [[3.0]]),
                    charts.heatmap("constant", np.ones((5, 4)), cmap="diverging"),
                    charts.heatmap(
                        "tall and wide",
                        rng.normal(size=(300, 64)),
                        row_groups=rng.integers(0, 10, 300),
                    ),
                    charts.scatter("one point", [0.0], [0.0]),
                    charts.scatter(
                        "many points",
                        rng.normal(size=3000),
                        rng.normal(size=3000),
                        color_by={"digit": rng.integers(0, 12, 3000)},
                    ),
                    charts.surface(
                        "three classes",
                        xx,
                        yy,
                        p3,
                        class_names=["r", "g", "b"],
                        points=[{"x": 0.1, "y": 0.2, "label": 2}],
                    ),
                    charts.thumbnails(
                        "all dead", np.zeros((3, 5, 5)), marked=[True] * 3, shared_scale=True
                    ),
                    charts.bars("zeros", ["a", "b"], [0.0, 0.0], signed=False),
                    charts.bars("with a gap", ["a", "b"], [nan, -2.0]),
                    charts.table("empty", ["a", "b"], []),
                    charts.findings("none", []),
                    charts.images("constant", np.zeros((1, 4, 6)), cmap="viridis"),
                    charts.slider("one frame", [charts.scatter("f", [0, 1], [1, 0])], ["only"]),
                ],
            },
            {"id": "empty", "title": "Empty section", "charts": []},
        ],
    }


def test_degenerate_inputs_render_without_errors(browser, tmp_path: Path) -> None:
    p = Page(browser, write_report(edge_payload(), tmp_path / "edge.html"))
    try:
        cards = p.page.query_selector_all("figure.nx-card")
        assert len(cards) == 16
        errors = [c.get_attribute("data-error") for c in cards if c.get_attribute("data-error")]
        assert errors == []
        assert p.console_errors == [] and p.page_errors == [] and p.blocked == []
    finally:
        p.close()
