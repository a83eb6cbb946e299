"""Chart specs and the HTML report writer (no browser; see tests/browser for the drawing)."""

from __future__ import annotations

import ast
import html.parser
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from netxray.report import KINDS, charts, payload_json, render_html, validate_payload, write_report
from netxray.report.html import VENDOR_JS
from netxray.report.packing import unpack

# ----------------------------------------------------------------------------- fixtures


def every_kind() -> list[dict]:
    rng = np.random.default_rng(0)
    xx, yy = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-2, 2, 4))
    p1 = 1 / (1 + np.exp(-(xx + yy)))
    probs = np.stack([1 - p1, p1], -1)
    surf = charts.surface(
        "s", xx, yy, probs, points=[{"x": 0.0, "y": 0.0, "label": 1, "marker": "test"}]
    )
    return [
        charts.lines("l", [1, 2, 3], {"train": [3.0, 2.0, 1.0], "test": [3.5, float("nan"), 1.2]}),
        charts.heatmap("h", rng.normal(size=(4, 3)), row_groups=[0, 1, 1, 0]),
        surf,
        charts.scatter("sc", [0, 1, 2], [2, 1, 0], color_by={"class": [0, 1, 1]}),
        charts.thumbnails("t", rng.normal(size=(3, 4, 4)), marked=[False, True, False]),
        charts.bars("b", ["a", "b"], [1.0, -1.0]),
        charts.table("tb", ["name", "n"], [["a", 1], ["b", None]]),
        charts.findings("f", [{"severity": "warning", "text": "t"}]),
        charts.images("i", rng.random((2, 8, 8))),
        charts.slider("sl", [surf, surf], ["epoch 1", "epoch 2"]),
        charts.tokens("tk", [["the", "<b>cat</b>"]], [[0.5, -1.0]], row_labels=["label 1"]),
        charts.network("n", [{"name": "input", "maps": rng.normal(size=(2, 4, 4))},
                             {"name": "act1", "maps": rng.normal(size=(3, 4, 4)),
                              "dead": [True, False, False], "saturated": [False, True, False]},
                             {"name": "output", "maps": rng.normal(size=(2, 4, 4))}],
                       [rng.normal(size=(3, 2)), rng.normal(size=(2, 3))]),
        charts.controls("c", [{"key": "go", "label": "go", "type": "button"}]),
    ]


def payload_with(charts_: list[dict], **extra) -> dict:
    return {
        "title": "Report",
        "subtitle": "sub",
        "meta": {"epochs": 3},
        "sections": [{"id": "main", "title": "Main", "description": "", "charts": charts_}],
        **extra,
    }


class _ScriptGrabber(html.parser.HTMLParser):
    """What a browser sees: the text of each <script>, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[tuple[dict, str]] = []
        self._in: dict | None = None
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href", "action", "poster", "data"):
            if a.get(key):
                self.refs.append(a[key])
        if tag == "script":
            self._in = a
            self.scripts.append((a, ""))

    def handle_endtag(self, tag):
        if tag == "script":
            self._in = None

    def handle_data(self, data):
        if self._in is not None:
            a, text = self.scripts[-1]
            self.scripts[-1] = (a, text + data)


def embedded(page: str) -> tuple[dict, _ScriptGrabber]:
    g = _ScriptGrabber()
    g.feed(page)
    data = [t for a, t in g.scripts if a.get("id") == "netxray-data"]
    assert len(data) == 1
    assert a_type(g) == "application/json"
    return json.loads(data[0]), g


def a_type(g: _ScriptGrabber) -> str:
    return next(a for a, _ in g.scripts if a.get("id") == "netxray-data")["type"]


def resolve(data: dict) -> dict:
    """The embedded payload with each ``{"$ref": i}`` replaced by ``data["arrays"][i]``."""
    table = data.get("arrays", [])

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"$ref"}:
                return table[v["$ref"]]
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return {k: walk(v) for k, v in data.items() if k != "arrays"}


def vals(packed: dict) -> list:
    """A packed array's values as nested lists, None where NaN/Inf."""
    a = unpack(packed)
    return np.where(np.isnan(a), None, a).tolist()


# ----------------------------------------------------------------------------- chart builders


def test_every_kind_is_covered_and_json_ready() -> None:
    specs = every_kind()
    assert [s["kind"] for s in specs] == list(KINDS)
    for s in specs:
        text = json.dumps(s, allow_nan=False)  # no NaN / Inf, no arrays left
        assert json.loads(text) == s


def test_lines_nan_becomes_null_and_numbers_are_packed() -> None:
    spec = charts.lines("l", np.arange(3), {"a": np.array([0.1, np.nan, np.inf], np.float32)})
    values = spec["series"][0]["values"]
    assert values["$nd"] == "f4" and values["shape"] == [3]
    assert vals(values) == [float(np.float32(0.1)), None, None]
    assert vals(spec["x"]) == [0, 1, 2]


def test_numbers_keep_float32_precision_and_float64_where_float32_overflows() -> None:
    v = np.array([1.2345678e-7, 3.14159265, -2.5e30])
    out = charts.lines("l", [0, 1, 2], {"a": v})["series"][0]["values"]
    np.testing.assert_allclose(unpack(out), v, rtol=2**-24)
    huge = charts.lines("l", [0, 1], {"a": [7e300, 1.0]})["series"][0]["values"]
    assert huge["$nd"] == "f8" and unpack(huge).tolist() == [7e300, 1.0]


def test_lines_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="has 2 values but x has 3"):
        charts.lines("l", [1, 2, 3], {"a": [1, 2]})
    with pytest.raises(ValueError, match="1-D"):
        charts.lines("l", [[1, 2]], {"a": [1, 2]})
    with pytest.raises(ValueError, match="non-empty"):
        charts.lines("l", [1], {})
    with pytest.raises(ValueError, match="x must be finite"):
        charts.lines("l", [1, float("nan")], {"a": [1, 2]})
    with pytest.raises(ValueError, match="dashed"):
        charts.lines("l", [1], {"a": [1]}, dashed=["b"])
    with pytest.raises(ValueError, match="title"):
        charts.lines(3, [1], {"a": [1]})  # type: ignore[arg-type]


def test_heatmap_checks_labels_and_groups() -> None:
    m = np.zeros((3, 2))
    with pytest.raises(ValueError, match="2-D"):
        charts.heatmap("h", np.zeros(3))
    with pytest.raises(ValueError, match="row_labels has 2 entries"):
        charts.heatmap("h", m, row_labels=["a", "b"])
    with pytest.raises(ValueError, match="col_labels has 3 entries"):
        charts.heatmap("h", m, col_labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="row_groups has 2 entries"):
        charts.heatmap("h", m, row_groups=[0, 1])
    with pytest.raises(ValueError, match="class_names|names"):
        charts.heatmap("h", m, row_groups=[0, 1, 2], group_names=["a", "b"])
    with pytest.raises(ValueError, match="cmap"):
        charts.heatmap("h", m, cmap="jet")
    with pytest.raises(ValueError, match="vmin"):
        charts.heatmap("h", m, vmin=1, vmax=0)
    spec = charts.heatmap("h", m, row_groups=[0, 1, 1], group_names=["a", "b"])
    assert spec["row_groups"]["categories"] == ["a", "b"]
    assert vals(spec["row_groups"]["values"]) == [0, 1, 1]


def test_surface_accepts_both_meshgrid_layouts_and_1d_axes() -> None:
    gx, gy = np.linspace(0, 1, 4), np.linspace(-1, 1, 3)
    xx, yy = np.meshgrid(gx, gy)  # (3, 4), indexing="xy"
    p1 = (xx + yy + 1) / 3
    probs = np.stack([1 - p1, p1], -1)
    a = charts.surface("s", xx, yy, probs)
    xi, yi = np.meshgrid(gx, gy, indexing="ij")  # (4, 3)
    p1i = (xi + yi + 1) / 3
    b = charts.surface("s", xi, yi, np.stack([1 - p1i, p1i], -1))
    c = charts.surface("s", gx, gy, probs)
    assert a["x"] == b["x"] == c["x"] and a["y"] == b["y"] == c["y"]
    np.testing.assert_allclose(unpack(a["x"]), gx, rtol=2**-24)
    np.testing.assert_allclose(unpack(a["y"]), gy, rtol=2**-24)
    # probs[j][i] is the cell at (x[i], y[j]) whatever the input layout
    assert a["probs"] == b["probs"]
    pa = unpack(a["probs"])
    assert pa.shape == (3, 4, 2)
    np.testing.assert_allclose(pa, probs, atol=1 / 508)  # 8-bit codes, 0 and 1 exact
    assert pa[2, 3, 1] == 1.0


def test_surface_validates() -> None:
    gx, gy = np.linspace(0, 1, 3), np.linspace(0, 1, 3)
    ok = np.full((3, 3, 2), 0.5)
    with pytest.raises(ValueError, match="probs has shape"):
        charts.surface("s", gx, gy, np.full((3, 4, 2), 0.5))
    with pytest.raises(ValueError, match="softmax"):
        charts.surface("s", gx, gy, np.full((3, 3, 2), 2.0))
    with pytest.raises(ValueError, match="sigmoid"):
        charts.surface("s", gx, gy, np.full((3, 3, 1), 1.0))
    with pytest.raises(ValueError, match="not finite"):
        charts.surface("s", gx, gy, np.full((3, 3, 2), np.nan))
    with pytest.raises(ValueError, match="increase"):
        charts.surface("s", gx[::-1], gy, ok)
    with pytest.raises(ValueError, match="class_names has 3"):
        charts.surface("s", gx, gy, ok, class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="class index"):
        charts.surface("s", gx, gy, ok, points=[{"x": 0, "y": 0, "label": 2}])
    with pytest.raises(ValueError, match="marker"):
        charts.surface("s", gx, gy, ok, points=[{"x": 0, "y": 0, "label": 1, "marker": "val"}])
    with pytest.raises(ValueError, match="x, y and label"):
        charts.surface("s", gx, gy, ok, points=[{"x": 0, "y": 0}])
    with pytest.raises(ValueError, match="dx, dy"):
        charts.surface("s", gx, gy, ok, arrows=[{"x": 0, "y": 0, "dx": 1}])
    xx, yy = np.meshgrid(gx, gy)
    with pytest.raises(ValueError, match="regular grid"):
        charts.surface("s", xx + yy * 0.1, yy, ok)


def test_scatter_colourings() -> None:
    spec = charts.scatter(
        "sc",
        torch.tensor([0.0, 1.0, 2.0]),
        np.array([1.0, 2.0, 3.0]),
        color_by={
            "class": np.array([2, 0, 1]),
            "correct": [True, False, True],
            "status": ["wrong", "right", "right"],
            "unit 3": torch.tensor([-1.0, 0.5, float("nan")]),
        },
        class_names=["a", "b", "c"],
    )
    cls, ok, status, unit = spec["color_by"]
    assert cls["type"] == "categorical" and cls["name"] == "class"
    assert cls["categories"] == ["a", "b", "c"] and vals(cls["values"]) == [2, 0, 1]
    assert ok["categories"] == ["false", "true"] and vals(ok["values"]) == [1, 0, 1]
    assert status["categories"] == ["right", "wrong"] and vals(status["values"]) == [1, 0, 0]
    assert unit["type"] == "continuous" and unit["name"] == "unit 3"
    assert vals(unit["values"]) == [-1.0, 0.5, None]
    many = charts.scatter("sc", np.arange(300.0), np.zeros(300), color_by={"c": np.arange(300)})
    assert vals(many["color_by"][0]["values"]) == list(range(300))  # past one byte: float32
    with pytest.raises(ValueError, match="one value per point"):
        charts.scatter("sc", [0, 1], [0, 1], color_by={"c": [0, 1, 2]})
    with pytest.raises(ValueError, match="class_names has 2"):
        charts.scatter("sc", [0, 1], [0, 1], color_by={"c": [0, 2]}, class_names=["a", "b"])
    with pytest.raises(ValueError, match="x has 2 points but y has 1"):
        charts.scatter("sc", [0, 1], [0])
    with pytest.raises(ValueError, match="finite"):
        charts.scatter("sc", [0, np.inf], [0, 1])
    with pytest.raises(ValueError, match=">= 0"):
        charts.scatter("sc", [0, 1], [0, 1], color_by={"c": [-1, 0]})


def test_thumbnails_bars_table_findings_images_slider_validate() -> None:
    with pytest.raises(ValueError, match="3-D"):
        charts.thumbnails("t", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="marked has 1"):
        charts.thumbnails("t", np.zeros((2, 4, 4)), marked=[True])
    with pytest.raises(ValueError, match="extent"):
        charts.thumbnails("t", np.zeros((2, 4, 4)), extent=[0, 1, 2])
    t = charts.thumbnails("t", np.zeros((2, 4, 4)), marked=[True, False])
    assert t["labels"] == ["unit 0", "unit 1"] and t["marked"] == [True, False]
    with pytest.raises(ValueError, match="labels has 1"):
        charts.bars("b", ["a"], [1, 2])
    with pytest.raises(ValueError, match="signed=True"):
        charts.bars("b", ["a", "b"], [1, -2], signed=False)
    with pytest.raises(ValueError, match="rows\\[1\\] has 1 cells"):
        charts.table("tb", ["a", "b"], [[1, 2], [3]])
    with pytest.raises(ValueError, match="rows\\[0\\]\\[0\\]"):
        charts.table("tb", ["a"], [[{"x": 1}]])
    assert charts.table("tb", ["a"], [[np.float32(0.5)], [float("nan")], [np.int64(3)]])[
        "rows"
    ] == [
        [0.5],
        [None],
        [3],
    ]
    with pytest.raises(ValueError, match="severity"):
        charts.findings("f", [{"severity": "bad", "text": "x"}])
    with pytest.raises(ValueError, match="text"):
        charts.findings("f", [{"severity": "info"}])
    f = charts.findings(
        "f",
        [
            {
                "severity": "error",
                "text": "x",
                "units": np.array([1, 2]),
                "evidence": {"a": np.float64(0.5)},
            }
        ],
    )
    assert f["items"][0] == {
        "severity": "error",
        "text": "x",
        "kind": "",
        "layer": "",
        "advice": "",
        "units": [1, 2],
        "evidence": {"a": 0.5},
    }
    with pytest.raises(ValueError, match="3-D"):
        charts.images("i", np.zeros((8, 8)))
    with pytest.raises(ValueError, match="cmap"):
        charts.images("i", np.zeros((1, 8, 8)), cmap="hot")
    bar = charts.bars("b", ["a"], [1])
    with pytest.raises(ValueError, match="one kind"):
        charts.slider("s", [bar, charts.table("t", ["a"], [])], ["1", "2"])
    with pytest.raises(ValueError, match="cannot hold 'table'"):
        charts.slider("s", [charts.table("t", ["a"], [])], ["1"])
    with pytest.raises(ValueError, match="frame_labels has 1"):
        charts.slider("s", [bar, bar], ["1"])
    with pytest.raises(ValueError, match="at least one frame"):
        charts.slider("s", [], [])
    with pytest.raises(ValueError, match="not a chart spec"):
        charts.slider("s", [{"kind": "pie"}], ["1"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=20))
def test_any_floats_become_finite_json(values: list[float]) -> None:
    spec = charts.lines("l", list(range(len(values))), {"a": values})
    out = spec["series"][0]["values"]
    json.dumps(out, allow_nan=False)
    for v, o in zip(values, vals(out), strict=True):
        if math.isfinite(v):
            assert o == pytest.approx(v, rel=2**-24, abs=0)  # float32, or float64 if needed
        else:
            assert o is None


# ----------------------------------------------------------------------------- payload and page


def test_payload_round_trips_through_the_page() -> None:
    payload = payload_with(every_kind())
    page = render_html(payload)
    data, _ = embedded(page)
    assert resolve(data) == json.loads(json.dumps(payload))
    assert json.loads(payload_json(payload)) == data


def test_script_breakout_is_impossible() -> None:
    evil = "</script><script>alert(1)</script><!-- \u2028 & </SCRIPT >"
    payload = payload_with([charts.table(evil, [evil], [[evil]])], title=evil)
    page = render_html(payload)
    data, g = embedded(page)
    assert data["title"] == evil and data["sections"][0]["charts"][0]["rows"] == [[evil]]
    # exactly our two scripts, however the strings are made
    assert len(g.scripts) == 2
    data_text = page.split('id="netxray-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_text and ">" not in data_text
    assert "<title>&lt;/script&gt;" in page


def test_placeholders_in_data_are_not_substituted() -> None:
    payload = payload_with([], title="<!--NETXRAY:JS-->", subtitle="<!--NETXRAY:CSS-->")
    data, _ = embedded(render_html(payload))
    assert data["title"] == "<!--NETXRAY:JS-->" and data["subtitle"] == "<!--NETXRAY:CSS-->"


def test_payload_accepts_arrays_and_nan_in_meta() -> None:
    payload = payload_with(
        [], meta={"acc": np.float32(0.5), "loss": float("nan"), "n": np.int64(3)}
    )
    data = json.loads(payload_json(payload))
    assert data["meta"] == {"acc": 0.5, "loss": None, "n": 3}
    minimal = json.loads(payload_json({"title": "t", "sections": []}))
    assert minimal == {"title": "t", "sections": [], "subtitle": "", "meta": {}}


def test_payload_validation() -> None:
    with pytest.raises(ValueError, match="known kinds: lines, heatmap"):
        validate_payload(payload_with([{"kind": "pie", "title": "p"}]))
    with pytest.raises(ValueError, match="lacks x, series"):
        validate_payload(payload_with([{"kind": "lines", "title": "p"}]))
    with pytest.raises(ValueError, match="title"):
        validate_payload({"sections": []})
    with pytest.raises(ValueError, match="sections"):
        validate_payload({"title": "t"})
    with pytest.raises(ValueError, match="used twice"):
        validate_payload({"title": "t", "sections": [{"id": "a", "title": "A", "charts": []}] * 2})
    with pytest.raises(ValueError, match="page anchor"):
        validate_payload({"title": "t", "sections": [{"id": "a b", "title": "A", "charts": []}]})
    bad_slider = charts.slider("s", [charts.bars("b", ["a"], [1])], ["1"])
    bad_slider["frames"][0] = {"kind": "pie"}
    with pytest.raises(ValueError, match="frames\\[0\\]"):
        validate_payload(payload_with([bad_slider]))
    with pytest.raises(ValueError, match="unknown kind"):
        render_html(payload_with([{"kind": "pie", "title": "p"}]))


_EXTERNAL = re.compile(r"""(?:src|href|action|url)\s*[=(]\s*["']?\s*(?:https?:)?//""", re.I)


_VENDOR_URLS = {
    "http://www.w3.org/1999/xhtml", "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink",
    "http://www.w3.org/XML/1998/namespace", "http://www.w3.org/2000/xmlns/",
    *(f"https://d3js.org/{m}/" for m in VENDOR_JS),
}


def test_written_report_is_self_contained(tmp_path: Path) -> None:
    path = write_report(payload_with(every_kind()), tmp_path / "sub" / "r.html")
    assert path == tmp_path / "sub" / "r.html"
    page = path.read_text(encoding="utf-8")
    _, g = embedded(page)
    assert all(not re.match(r"(?:[a-z]+:)?//", ref, re.I) for ref in g.refs), g.refs
    assert not _EXTERNAL.search(page)
    # the vendored d3 names URLs it never fetches: XML namespaces and its own home page
    urls = set(re.findall(r"https?://[^\s\"',)]*", page))
    assert urls <= _VENDOR_URLS, urls - _VENDOR_URLS
    assert "@import" not in page and "<link" not in page
    assert all("src" not in a for a, _ in g.scripts)
    assert "default-src 'none'" in page  # and the browser refuses anything else


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.html"
    write_report(payload_with([]), path)
    old = path.read_text(encoding="utf-8")
    import netxray.report.html as rh

    def boom(payload):
        raise RuntimeError("crash while rendering")

    monkeypatch.setattr(rh, "render_html", boom)
    with pytest.raises(RuntimeError):
        rh.write_report(payload_with([]), path)
    monkeypatch.undo()

    import os

    real_replace = os.replace

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report({"title": "new", "sections": []}, path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert path.read_text(encoding="utf-8") == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temp file left


def test_live_url_is_an_attribute_not_code() -> None:
    page = render_html(payload_with([]), live_url='/api"><script>x</script>', poll_s=0.5)
    assert 'data-live-url="/api&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in page
    assert 'data-poll-ms="500"' in page
    with pytest.raises(ValueError, match="poll_s"):
        render_html(payload_with([]), live_url="/x", poll_s=0)


def test_assets_ship_with_the_package() -> None:
    from importlib import resources

    from netxray.report.html import JS_MODULES, front_end_js

    web = resources.files("netxray.report").joinpath("web")
    for name in (*JS_MODULES, "style.css", "template.html"):
        assert web.joinpath(name).is_file()
    for name in JS_MODULES:  # modules a newcomer can hold in their head
        assert len(web.joinpath(name).read_text(encoding="utf-8").splitlines()) < 450, name
    js = front_end_js()
    for kind in KINDS:  # the front-end draws every kind the builders make
        assert re.search(rf"\b{kind}: render", js), kind
    assert "window.netxrayRender" in js and "function unpackPayload" in js
    assert js.startswith("(function () {") and js.rstrip().endswith("})();")
    assert front_end_js() in render_html(payload_with([]))


def test_lines_take_named_x_positions():
    spec = charts.lines("probe", [0, 1, 2], {"acc": [0.5, 0.8, 0.9]}, x_labels=["input", "a", "b"])
    assert spec["x_labels"] == ["input", "a", "b"]
    with pytest.raises(ValueError, match="x_labels has 2 entries but there are 3"):
        charts.lines("probe", [0, 1, 2], {"acc": [0.5, 0.8, 0.9]}, x_labels=["input", "a"])


# ----------------------------------------------------------------------------- layering

#: what the report must never import: it draws results, so it needs no model, no dataset
#: loader, no computation and no application code (those produce the results it draws)
_FORBIDDEN = (
    "torch.nn", "netxray.models", "netxray.training", "netxray.data", "netxray.loading",
    "netxray.capture", "netxray.stats", "netxray.health", "netxray.weights",
    "netxray.attribution", "netxray.boundary", "netxray.probes", "netxray.projection",
    "netxray.analysis", "netxray.demo", "netxray.presets", "netxray.cli",
)


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """Every module an import statement names, outside ``if TYPE_CHECKING:`` blocks."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{a.name}") for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def test_the_report_imports_no_model_data_or_computation() -> None:
    import netxray.report

    root = Path(netxray.report.__file__).parent
    files = sorted(root.rglob("*.py"))
    assert len(files) >= 6
    bad = []
    for path in files:
        for line, name in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            assert not name.startswith("."), f"{path.name}:{line}: use absolute imports"
            if any(name == f or name.startswith(f + ".") for f in _FORBIDDEN):
                bad.append(f"{path.relative_to(root)}:{line} imports {name}")
    assert bad == [], "the report must draw results only:\n" + "\n".join(bad)


def test_the_layering_check_catches_each_form_of_import() -> None:
    src = (
        "import torch.nn as nn\nfrom torch import nn\nfrom netxray import models\n"
        "def f():\n    from netxray.attribution.engine import x\n"
        "if TYPE_CHECKING:\n    from netxray.data import Dataset\n"
    )
    names = [n for _, n in _runtime_imports(ast.parse(src))]
    assert "torch.nn" in names and "netxray.models" in names
    assert "netxray.attribution.engine" in names and "netxray.data" not in names


def test_vendored_d3_ships_with_its_licences_and_pinned_versions() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    web = root / "src" / "netxray" / "report" / "web"
    readme = (web / "vendor" / "README.md").read_text(encoding="utf-8")
    for name in VENDOR_JS:
        head = (web / "vendor" / f"{name}.min.js").read_text(encoding="utf-8").splitlines()[0]
        version = re.search(rf"https://d3js.org/{name}/ v(\S+) ", head).group(1)
        assert f"| {name} | {version} |" in readme  # the README names the shipped version
        assert "Copyright" in (web / "vendor" / f"{name}.LICENSE").read_text(encoding="utf-8")
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["netxray"]
    for f in web.rglob("*"):
        if f.is_file():
            rel = f.relative_to(root / "src" / "netxray").as_posix()
            assert any(fnmatch.fnmatch(rel, g) and rel.count("/") == g.count("/") for g in globs), rel
