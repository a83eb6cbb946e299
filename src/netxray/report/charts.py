"""Chart specs: plain, JSON-ready dicts the web front-end draws.

One function per chart kind. Each checks its inputs (shapes agree, labels fit) and returns a
JSON-ready dict ``{"kind": ..., "title": ..., ...}``. Inputs may be NumPy arrays, torch tensors
or nested lists; numeric arrays are stored *packed* (:mod:`netxray.report.packing`: base64
of float32, of float16 for pictures, of 8-bit codes for probabilities and unit maps), which
the page decodes back to nested arrays, NaN and +-Inf as ``null`` (drawn as gaps or grey
cells). :func:`netxray.report.packing.unpack` reads them back in Python.

The same dicts feed the self-contained HTML report and, later, the live server: put them in
a payload's ``sections[i]["charts"]`` (see :mod:`netxray.report.html` and docs/report.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from netxray.report.chart_spec import (
    KINDS,
    SEVERITIES,
    _base,
    _categorical,
    _check_cmap,
    _labels,
    _link_set,
    _numbers,
    _text,
    _to_list,
)
from netxray.report.controls_chart import CONTROL_TYPES, controls
from netxray.report.network_chart import network
from netxray.report.packing import pack
from netxray.report.plane_charts import images, scatter, surface, thumbnails

__all__ = [
    "CONTROL_TYPES",
    "KINDS",
    "SEVERITIES",
    "bars",
    "controls",
    "findings",
    "heatmap",
    "images",
    "lines",
    "network",
    "scatter",
    "slider",
    "surface",
    "table",
    "thumbnails",
    "tokens",
]


def lines(
    title: str,
    x: Any,
    series: Mapping[str, Any],
    *,
    xlabel: str = "",
    ylabel: str = "",
    log_y: bool = False,
    dashed: Sequence[str] = (),
    x_labels: Sequence[Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Line plot of several series over a shared x, e.g. train/test loss per epoch.

    ``x``: ``(n,)`` finite numbers. ``series``: name -> ``(n,)`` values (NaN/Inf become gaps).
    ``log_y`` draws the y axis in log scale (values <= 0 are left out). Series named in
    ``dashed`` are drawn dashed (e.g. the test curves beside the train ones).
    ``x_labels``: one name per x, shown as the x ticks instead of numbers (e.g. layer names
    along depth).
    """
    spec = _base("lines", title, description)
    xs = _numbers(x, "x", 1)
    if not np.isfinite(xs).all():
        raise ValueError("x must be finite numbers; drop the points where x is NaN or Inf")
    if not isinstance(series, Mapping) or not series:
        raise ValueError("series must be a non-empty dict of name -> values")
    out = []
    for name, values in series.items():
        ys = _numbers(values, f"series[{name!r}]", 1)
        if ys.shape != xs.shape:
            raise ValueError(
                f"series[{name!r}] has {ys.shape[0]} values but x has {xs.shape[0]}; "
                "give one value per x"
            )
        out.append({"name": str(name), "values": pack(ys), "dashed": str(name) in dashed})
    unknown = set(dashed) - {str(n) for n in series}
    if unknown:
        raise ValueError(f"dashed names unknown series {sorted(unknown)}; series: {list(series)}")
    spec.update(
        x=pack(xs),
        series=out,
        xlabel=_text(xlabel, "xlabel"),
        ylabel=_text(ylabel, "ylabel"),
        log_y=bool(log_y),
    )
    if x_labels is not None:
        spec["x_labels"] = _labels(x_labels, xs.shape[0], "x_labels")
    return spec


def heatmap(
    title: str,
    matrix: Any,
    *,
    row_labels: Sequence[Any] | None = None,
    col_labels: Sequence[Any] | None = None,
    row_groups: Sequence[Any] | None = None,
    group_names: Sequence[str] | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    xlabel: str = "",
    ylabel: str = "",
    description: str = "",
) -> dict[str, Any]:
    """A matrix as coloured cells, e.g. activations ``(samples, units)``.

    ``row_groups``: one label per row (class index, bool or string), drawn as a colour strip
    at the left, e.g. the class of each sample; ``group_names`` names integer groups.
    ``cmap``: ``"viridis"`` (sequential) or ``"diverging"`` (orange for negative, white at 0, blue for positive).
    ``vmin``/``vmax`` fix the colour range (default: the data's range).
    """
    spec = _base("heatmap", title, description)
    m = _numbers(matrix, "matrix", 2)
    rows, cols = m.shape
    groups = None
    if row_groups is not None:
        g = _to_list(row_groups)
        if len(g) != rows:
            raise ValueError(f"row_groups has {len(g)} entries but matrix has {rows} rows")
        groups = _categorical(g, "row_groups", group_names)
    elif group_names is not None:
        raise ValueError("group_names needs row_groups (the group of each row)")
    for name, v in (("vmin", vmin), ("vmax", vmax)):
        if v is not None and not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number; got {v}")
    if vmin is not None and vmax is not None and vmin >= vmax:
        raise ValueError(f"vmin ({vmin}) must be below vmax ({vmax})")
    spec.update(
        matrix=pack(m, "f2"),
        row_labels=_labels(row_labels, rows, "row_labels"),
        col_labels=_labels(col_labels, cols, "col_labels"),
        row_groups=groups,
        cmap=_check_cmap(cmap, ("viridis", "diverging")),
        vmin=None if vmin is None else float(vmin),
        vmax=None if vmax is None else float(vmax),
        xlabel=_text(xlabel, "xlabel"),
        ylabel=_text(ylabel, "ylabel"),
    )
    return spec


def bars(
    title: str,
    labels: Sequence[Any],
    values: Any,
    *,
    signed: bool = True,
    xlabel: str = "",
    description: str = "",
) -> dict[str, Any]:
    """Horizontal bars, one per label, e.g. a weight per input or a fraction of dead units.

    ``signed=True``: bars grow left (orange, negative) or right (blue, positive) of zero.
    ``signed=False``: values must be >= 0 and share one colour.
    """
    spec = _base("bars", title, description)
    v = _numbers(values, "values", 1)
    names = _labels(labels, v.size, "labels")
    if not signed and (v[np.isfinite(v)] < 0).any():
        raise ValueError("signed=False needs values >= 0; pass signed=True for negative values")
    spec.update(labels=names, values=pack(v), signed=bool(signed), xlabel=_text(xlabel, "xlabel"))
    return spec


def _cell(value: Any, where: str) -> Any:
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return _cell(value.item(), where)
    raise ValueError(f"{where} must be a string, number, bool or None; got {type(value).__name__}")


def table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    description: str = "",
    link: str | None = None,
    link_column: int | None = None,
) -> dict[str, Any]:
    """A table of strings and numbers; the front-end sorts it by a click on a header.

    ``link``/``link_column``: the rows are samples of the set ``link`` (e.g. ``"test"``),
    their index in column ``link_column``; hovering a row lights the sample up in the other
    charts linked to the set, and hovering it there highlights the row (docs/report.md).
    """
    spec = _base("table", title, description)
    cols = [_text(c, "column name") for c in _to_list(columns)]
    if not cols:
        raise ValueError("columns must name at least one column")
    if (link is None) != (link_column is None):
        raise ValueError("give link (the sample set) and link_column (the column of sample "
                         "indices) together")
    if link is not None:
        if not isinstance(link_column, int) or not 0 <= link_column < len(cols):
            raise ValueError(f"link_column must be a column index in 0..{len(cols) - 1}; "
                             f"got {link_column!r}")
        spec.update(link=_link_set(link), link_column=link_column)
    out = []
    for i, row in enumerate(rows):
        cells = _to_list(row)
        if len(cells) != len(cols):
            raise ValueError(f"rows[{i}] has {len(cells)} cells but there are {len(cols)} columns")
        out.append([_cell(c, f"rows[{i}][{j}]") for j, c in enumerate(cells)])
    spec.update(columns=cols, rows=out)
    return spec


def findings(
    title: str,
    items: Sequence[Mapping[str, Any]],
    *,
    description: str = "",
) -> dict[str, Any]:
    """Diagnostic findings as cards coloured by severity.

    Each item: ``{"severity": one of SEVERITIES, "text": what is wrong, "kind": e.g.
    "dead_units", "layer": e.g. "act1", "advice": what to do}``; optional ``"units"`` (list of
    ints) and ``"evidence"`` (dict of name -> number/string) are shown as small print.
    An empty list shows a single "no problems found" card.
    """
    spec = _base("findings", title, description)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"items[{i}] must be a dict; got {type(item).__name__}")
        sev = item.get("severity")
        if sev not in SEVERITIES:
            raise ValueError(
                f"items[{i}]['severity'] must be one of {', '.join(SEVERITIES)}; got {sev!r}"
            )
        if not isinstance(item.get("text"), str) or not item["text"]:
            raise ValueError(f"items[{i}] needs a non-empty 'text' saying what is wrong")
        entry: dict[str, Any] = {"severity": sev, "text": item["text"]}
        for key in ("kind", "layer", "advice"):
            entry[key] = _text(item.get(key) or "", f"items[{i}][{key!r}]")
        if item.get("units") is not None:
            entry["units"] = [int(u) for u in _to_list(item["units"])]
        if item.get("evidence") is not None:
            ev = item["evidence"]
            if not isinstance(ev, Mapping):
                raise ValueError(f"items[{i}]['evidence'] must be a dict of name -> value")
            entry["evidence"] = {
                str(k): _cell(v, f"items[{i}]['evidence'][{k!r}]") for k, v in ev.items()
            }
        out.append(entry)
    spec["items"] = out
    return spec


def slider(
    title: str,
    frames: Sequence[Mapping[str, Any]],
    frame_labels: Sequence[Any],
    *,
    description: str = "",
) -> dict[str, Any]:
    """A slider over frames of one chart kind, e.g. the decision surface at each epoch.

    ``frames``: chart specs made by the other functions here, all of the same kind (not
    ``slider``, ``table``, ``findings``, ``tokens`` or ``controls``). Scatter and line frames share their axes' range
    so that the slider shows movement rather than rescaling. ``frame_labels``: one per frame.
    """
    spec = _base("slider", title, description)
    fr = list(frames)
    if not fr:
        raise ValueError("slider needs at least one frame")
    kinds = set()
    for i, f in enumerate(fr):
        if not isinstance(f, Mapping) or f.get("kind") not in KINDS:
            raise ValueError(
                f"frames[{i}] is not a chart spec; build it with netxray.report.charts"
            )
        kinds.add(f["kind"])
    if len(kinds) > 1:
        raise ValueError(f"all frames must be of one kind; got {sorted(kinds)}")
    kind = kinds.pop()
    if kind in ("slider", "table", "findings", "tokens", "controls"):
        raise ValueError(f"a slider cannot hold {kind!r} frames")
    names = _labels(frame_labels, len(fr), "frame_labels")
    spec.update(frames=[dict(f) for f in fr], frame_labels=names, frame_kind=kind)
    return spec


def tokens(
    title: str,
    rows: Sequence[Sequence[str]],
    scores: Sequence[Any],
    *,
    row_labels: Sequence[Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """Sentences as text, each token shaded by its score: blue positive, orange negative,
    white 0, each row on its own symmetric scale (its largest |score|).

    ``rows``: one list of token strings per sentence (user text: the page draws it as text,
    never as HTML). ``scores``: one ``(len(row),)`` array per row (NaN: no score, grey).
    ``row_labels``: one short line per row (e.g. its label and prediction).
    """
    spec = _base("tokens", title, description)
    toks = [[_text(t, f"rows[{i}][{j}]") for j, t in enumerate(_to_list(r))]
            for i, r in enumerate(_to_list(rows))]
    if not toks:
        raise ValueError("rows is empty; a tokens chart needs at least one sentence")
    vals = _to_list(scores)
    if len(vals) != len(toks):
        raise ValueError(f"scores has {len(vals)} rows but rows has {len(toks)}; one per sentence")
    width = max(1, max(len(r) for r in toks))
    packed = np.full((len(toks), width), np.nan)
    for i, (r, v) in enumerate(zip(toks, vals, strict=True)):
        a = _numbers(v, f"scores[{i}]", 1, nonempty=False)
        if a.shape[0] != len(r):
            raise ValueError(
                f"scores[{i}] has {a.shape[0]} values but rows[{i}] has {len(r)} tokens; "
                "give one score per token"
            )
        packed[i, : len(r)] = a
    spec.update(rows=toks, scores=pack(packed), row_labels=_labels(row_labels, len(toks),
                                                                    "row_labels"))
    return spec
