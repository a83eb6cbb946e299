"""The self-contained HTML report: the web front-end with a run's data embedded as JSON.

The page is one file: the template, the CSS and the JavaScript from ``web/`` inlined (the
modules of :data:`JS_MODULES`, concatenated in that order inside one function scope), and the
payload in ``<script type="application/json" id="netxray-data">``, its arrays packed
(:mod:`netxray.report.packing`) and each stored once. It opens from ``file://``
with no network at all. The live server (``netxray serve``) feeds the same front-end the same
JSON (:func:`payload_json`) over HTTP; ``render_html(payload, live_url=...)`` makes a page that
polls it and redraws through ``window.netxrayRender(payload)``.

Payload::

    {"title": str, "subtitle": str, "meta": {key: str | number | bool | None},
     "sections": [{"id": str, "title": str, "description": str,
                   "charts": [chart spec from netxray.report.charts, ...]}],
     "arrays": [packed array, ...]}   # written by payload_json; specs hold {"$ref": i}
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from netxray._io import write_text
from netxray._results import to_plain
from netxray.report.charts import KINDS
from netxray.report.packing import share

__all__ = ["JS_MODULES", "VENDOR_JS", "front_end_js", "payload_json", "render_html",
           "render_page", "validate_payload",
           "write_report"]

#: The front-end's modules in ``web/``, in the order the page runs them: helpers and the
#: array decoder, charts on axes (the surface in its own module), tiles and panels, the form
#: (``controls``), then the page that registers and draws them.
JS_MODULES = ("core.js", "charts-plot.js", "charts-surface.js", "charts-grid.js",
              "charts-markers.js", "charts-link.js", "charts-network.js", "charts-controls.js",
              "page.js")

#: The vendored d3 modules in ``web/vendor/`` (versions and licences: its README.md), in
#: dependency order; the page runs them first, on a private object (see :func:`front_end_js`).
VENDOR_JS = ("d3-array", "d3-contour", "d3-dispatch", "d3-selection", "d3-color",
             "d3-interpolate", "d3-scale-chromatic", "d3-ease", "d3-timer", "d3-transition",
             "d3-drag", "d3-zoom")

# Keys each chart kind must carry (what the front-end reads); builders in charts.py set them.
_REQUIRED: dict[str, tuple[str, ...]] = {
    "lines": ("x", "series"),
    "heatmap": ("matrix",),
    "surface": ("x", "y", "probs", "class_names"),
    "scatter": ("x", "y", "color_by"),
    "thumbnails": ("maps", "labels", "marked"),
    "bars": ("labels", "values"),
    "table": ("columns", "rows"),
    "findings": ("items",),
    "images": ("images", "labels"),
    "slider": ("frames", "frame_labels"),
    "tokens": ("rows", "scores"),
    "network": ("layers", "links"),
    "controls": ("controls",),
}
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def _check_chart(chart: Any, where: str) -> None:
    if not isinstance(chart, Mapping):
        raise ValueError(f"{where} must be a chart spec (a dict); got {type(chart).__name__}")
    kind = chart.get("kind")
    if kind not in KINDS:
        raise ValueError(
            f"{where} has unknown kind {kind!r}; known kinds: {', '.join(KINDS)} "
            "(build charts with netxray.report.charts)"
        )
    missing = [k for k in ("title", *_REQUIRED[kind]) if k not in chart]
    if missing:
        raise ValueError(
            f"{where} ({kind}) lacks {', '.join(missing)}; build it with "
            f"netxray.report.charts.{kind}()"
        )
    if kind == "slider":
        for i, frame in enumerate(chart["frames"]):
            _check_chart(frame, f"{where}.frames[{i}]")
            if frame["kind"] in ("slider", "table", "findings", "tokens", "controls"):
                raise ValueError(f"{where}.frames[{i}]: a slider cannot hold {frame['kind']!r}")


def validate_payload(payload: Any) -> None:
    """Raise ``ValueError`` naming the first thing the front-end could not draw."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a dict; got {type(payload).__name__}")
    if not isinstance(payload.get("title"), str):
        raise ValueError("payload needs a 'title' string")
    for key in ("subtitle",):
        if key in payload and not isinstance(payload[key], str):
            raise ValueError(f"payload[{key!r}] must be a string")
    meta = payload.get("meta", {})
    if not isinstance(meta, Mapping):
        raise ValueError("payload['meta'] must be a dict of name -> value")
    for k, v in meta.items():
        if not isinstance(v, str | int | float | bool | type(None)) and not hasattr(v, "item"):
            raise ValueError(f"payload['meta'][{k!r}] must be a string or number; got {type(v)}")
    sections = payload.get("sections")
    if not isinstance(sections, list | tuple):
        raise ValueError("payload needs 'sections': a list of {id, title, description, charts}")
    seen: set[str] = set()
    for i, sec in enumerate(sections):
        if not isinstance(sec, Mapping):
            raise ValueError(f"sections[{i}] must be a dict")
        sid = sec.get("id")
        if not isinstance(sid, str) or not _ID.match(sid):
            raise ValueError(
                f"sections[{i}]['id'] must be a letter then letters, digits, '-' or '_' "
                f"(it becomes the page anchor); got {sid!r}"
            )
        if sid in seen:
            raise ValueError(f"section id {sid!r} is used twice; ids must be unique")
        seen.add(sid)
        if not isinstance(sec.get("title"), str):
            raise ValueError(f"sections[{i}] ({sid}) needs a 'title' string")
        if not isinstance(sec.get("description", ""), str):
            raise ValueError(f"sections[{i}] ({sid}): 'description' must be a string")
        charts = sec.get("charts")
        if not isinstance(charts, list | tuple):
            raise ValueError(f"sections[{i}] ({sid}) needs 'charts': a list of chart specs")
        for j, chart in enumerate(charts):
            _check_chart(chart, f"sections[{i}] ({sid}).charts[{j}]")


def payload_json(payload: Mapping[str, Any]) -> str:
    """The payload, validated, as compact JSON (what the report embeds and the server sends).

    The charts' packed arrays move to ``"arrays"``, each distinct one stored once; anything
    else array-like becomes lists and numbers, NaN/Inf ``null``.
    """
    validate_payload(payload)
    plain = share(to_plain(dict(payload)))
    plain.setdefault("subtitle", "")
    plain.setdefault("meta", {})
    return json.dumps(plain, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def _script_safe(text: str) -> str:
    """JSON that cannot end its ``<script>`` element: no ``<``, ``>``, ``&`` or JS newlines."""
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


@cache
def _asset(name: str) -> str:
    text = resources.files("netxray.report").joinpath("web", name).read_text(encoding="utf-8")
    closing = "</script" if name.endswith(".js") else "</style" if name.endswith(".css") else None
    if closing and closing in text.lower():  # would end the inline element early
        raise RuntimeError(f"web/{name} contains {closing!r}; it cannot be inlined")
    return text


@cache
def front_end_js() -> str:
    """The page's script: :data:`JS_MODULES` concatenated in order in one strict-mode scope.

    The d3 modules of :data:`VENDOR_JS` run first, each UMD build seeing ``globalThis``,
    ``self``, ``define``, ``exports`` and ``module`` shadowed, so they register on a private
    object that becomes the scope's ``d3``: nothing is added to ``window`` and a page's own
    d3 or RequireJS (a notebook) is neither used nor changed.
    """
    vendor = "\n".join(_asset(f"vendor/{name}.min.js") for name in VENDOR_JS)
    d3 = ("var d3 = (function () {\nvar root = {};\n"
          "(function (globalThis, self, define, exports, module) {\n"
          f"{vendor}\n}})(root, root);\nreturn root.d3;\n}})();")
    body = "\n".join(_asset(name) for name in JS_MODULES)
    return f'(function () {{\n"use strict";\n{d3}\n{body}\n}})();\n'


def render_html(
    payload: Mapping[str, Any], *, live_url: str | None = None, poll_s: float = 2.0
) -> str:
    """The whole report as one HTML string (CSS, JS and data inline; no network needed).

    ``live_url``: for the live server only; the page then fetches the payload from that URL
    every ``poll_s`` seconds and redraws when it changed.
    """
    return render_page(payload_json(payload), live_url=live_url, poll_s=poll_s)


def render_page(data_json: str, *, live_url: str | None = None, poll_s: float = 2.0) -> str:
    """:func:`render_html` of a payload already made JSON by :func:`payload_json` (what the
    server caches); the title is read back from it."""
    data = _script_safe(data_json)
    title = json.loads(data_json).get("title", "netxray report")
    if live_url is not None and not isinstance(live_url, str):
        raise ValueError("live_url must be a string URL or None")
    if not poll_s > 0:
        raise ValueError(f"poll_s must be > 0; got {poll_s}")
    live = (
        ""
        if live_url is None
        else f' data-live-url="{html.escape(live_url, quote=True)}" data-poll-ms="{int(poll_s * 1000)}"'
    )
    parts = {
        "TITLE": html.escape(str(title)),
        "CSS": _asset("style.css"),
        "JS": front_end_js(),
        "DATA": data,
        "LIVE": live,
    }
    # one pass, so nothing inserted (e.g. a title containing a placeholder) is substituted again
    return re.sub(r"<!--NETXRAY:(\w+)-->", lambda m: parts[m.group(1)], _asset("template.html"))


def write_report(payload: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write the report to ``path`` atomically (a reader never sees half a file)."""
    return write_text(path, render_html(payload))
