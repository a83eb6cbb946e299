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

from netxray.report.packing import pack

__all__ = [
    "KINDS",
    "SEVERITIES",
    "bars",
    "findings",
    "heatmap",
    "images",
    "lines",
    "scatter",
    "slider",
    "surface",
    "table",
    "thumbnails",
]

#: Every chart kind the front-end knows how to draw.
KINDS = (
    "lines",
    "heatmap",
    "surface",
    "scatter",
    "thumbnails",
    "bars",
    "table",
    "findings",
    "images",
    "slider",
)

#: Severities a finding may have, most to least serious.
SEVERITIES = ("critical", "error", "warning", "info", "ok")

_CMAPS = ("viridis", "diverging", "gray")
_MARKERS = ("train", "test")
#: Probabilities are stored as 8-bit codes of this step: 0 and 1 exact, any value within 1/508.
PROB_STEP = 1.0 / 254.0


# --------------------------------------------------------------------------- helpers


def _as_array(value: Any, name: str) -> np.ndarray:
    """Any array-like (tensor, ndarray, nested list) as a float64 NumPy array."""
    try:
        import torch

        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers; got {type(value).__name__}") from exc
    return arr


def _numbers(value: Any, name: str, ndim: int, *, nonempty: bool = True) -> np.ndarray:
    arr = _as_array(value, name)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {tuple(arr.shape)}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name} is empty; a chart needs at least one value")
    return arr


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string; got {type(value).__name__}")
    return value


def _labels(value: Any, n: int, name: str) -> list[str] | None:
    if value is None:
        return None
    labels = [str(v) for v in _to_list(value)]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but there are {n} to label")
    return labels


def _to_list(value: Any) -> list:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ValueError(f"expected a list or array; got {type(value).__name__}")
    return list(value)


def _base(kind: str, title: Any, description: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "title": _text(title, "title"),
        "description": _text(description, "description"),
    }


def _check_cmap(cmap: str, allowed: Sequence[str] = _CMAPS) -> str:
    if cmap not in allowed:
        raise ValueError(f"cmap must be one of {', '.join(allowed)}; got {cmap!r}")
    return cmap


def _categorical(values: list, name: str, class_names: Sequence[str] | None) -> dict[str, Any]:
    """Labels (ints, bools or strings) as codes into a list of category names."""
    categories, codes = _category_codes(values, name, class_names)
    return {"type": "categorical", "categories": categories, "values": _pack_codes(codes)}


def _category_codes(
    values: list, name: str, class_names: Sequence[str] | None
) -> tuple[list[str], list[int]]:
    if all(isinstance(v, bool | np.bool_) for v in values):
        return ["false", "true"], [int(v) for v in values]
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values):
        ints = [int(v) for v in values]
        if class_names is not None:
            if ints and (min(ints) < 0 or max(ints) >= len(class_names)):
                raise ValueError(
                    f"{name} holds class indices {min(ints)}..{max(ints)} but class_names has "
                    f"{len(class_names)} names; pass one name per class"
                )
            return list(class_names), ints
        if ints and min(ints) < 0:
            raise ValueError(
                f"{name}: integer labels must be >= 0 (class indices); got {min(ints)}"
            )
        k = max(ints) + 1 if ints else 0
        return [str(i) for i in range(k)], ints
    if all(isinstance(v, str) for v in values):
        categories = sorted(set(values))
        index = {c: i for i, c in enumerate(categories)}
        return categories, [index[v] for v in values]
    raise ValueError(
        f"{name} mixes kinds of labels; pass all ints (class indices), all bools, all strings, "
        "or a float array for a continuous colouring"
    )


def _pack_codes(codes: list[int]) -> dict[str, Any]:
    """Category codes: one byte each while they fit (exact), else float32 (exact to 2**24)."""
    if codes and max(codes) >= 255:
        return pack(np.asarray(codes, dtype=np.float64))
    return pack(np.asarray(codes, dtype=np.float64), "u8", lo=0.0, step=1.0)


def _symmetric_u8(maps: np.ndarray, *, shared: bool) -> dict[str, Any]:
    """``(units, ny, nx)`` maps as 8-bit codes on a symmetric scale, one per map (or one for
    all when ``shared``): 0 stays exactly 0 and each map's largest |value| is code 0 or 254,
    so a map drawn on its own symmetric scale keeps every colour to within half a step."""
    finite = np.where(np.isfinite(maps), np.abs(maps), 0.0)
    top = finite.max(axis=(1, 2)) if maps.size else np.zeros(len(maps))
    if shared:
        top = np.full(len(maps), top.max() if top.size else 0.0)
    step = np.where(top > 0, top / 127.0, 1.0)
    return pack(maps, "u8", lo=-(step * 127.0), step=step)


# --------------------------------------------------------------------------- chart kinds


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
    ``cmap``: ``"viridis"`` (sequential) or ``"diverging"`` (blue-white-orange, centred on 0).
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


def _grid_axes(xx: np.ndarray, yy: np.ndarray, probs: np.ndarray) -> tuple:
    """(x axis, y axis, probs as (ny, nx, classes)) from 1-D axes or a meshgrid."""
    if xx.ndim == 1 and yy.ndim == 1:
        if probs.shape[:2] != (yy.size, xx.size):
            raise ValueError(
                f"probs has shape {probs.shape} but with 1-D axes it must be "
                f"(len(yy), len(xx), classes) = ({yy.size}, {xx.size}, classes)"
            )
        return xx, yy, probs
    if xx.ndim == 2 and yy.ndim == 2:
        if xx.shape != yy.shape or probs.shape[:2] != xx.shape:
            raise ValueError(
                f"xx {xx.shape}, yy {yy.shape} and probs {probs.shape[:2]}+(classes,) "
                "must share their first two dimensions (a meshgrid and its predictions)"
            )
        if np.allclose(xx, xx[:1, :]) and np.allclose(yy, yy[:, :1]):  # indexing="xy"
            return xx[0], yy[:, 0], probs
        if np.allclose(xx, xx[:, :1]) and np.allclose(yy, yy[:1, :]):  # indexing="ij"
            return xx[:, 0], yy[0], probs.transpose(1, 0, 2)
        raise ValueError("xx/yy are not a regular grid; build them with np.meshgrid")
    raise ValueError(
        f"xx and yy must both be 1-D axes or both 2-D meshgrids; got {xx.ndim}-D and {yy.ndim}-D"
    )


def surface(
    title: str,
    xx: Any,
    yy: Any,
    probs: Any,
    *,
    points: Sequence[Mapping[str, Any]] | None = None,
    arrows: Sequence[Mapping[str, Any]] | None = None,
    class_names: Sequence[str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    description: str = "",
) -> dict[str, Any]:
    """A decision surface over a 2-D plane, like TensorFlow Playground.

    ``xx``, ``yy``: the grid, either 1-D axes ``(nx,)``, ``(ny,)`` or a meshgrid ``(ny, nx)``
    (``indexing="xy"`` or ``"ij"``). ``probs``: class probabilities on the grid,
    ``(ny, nx, classes)`` with ``classes >= 2`` (for one sigmoid output ``p`` pass
    ``np.stack([1 - p, p], -1)``). Each cell's colour mixes the class colours by probability;
    confident cells are strong, uncertain ones pale. The boundary is drawn as a line.
    ``points``: ``[{"x", "y", "label": class index, "marker": "train" | "test"}]`` drawn on
    top, train points as circles, test points as dark-edged squares (optional ``"index"`` shown
    in the tooltip). ``arrows``: ``[{"x", "y", "dx", "dy"}]``,
    e.g. input gradients, scaled so the longest is a fixed fraction of the plot.
    """
    spec = _base("surface", title, description)
    gx = _as_array(xx, "xx")
    gy = _as_array(yy, "yy")
    p = _numbers(probs, "probs", 3)
    ax, ay, p = _grid_axes(gx, gy, p)
    if ax.size < 2 or ay.size < 2:
        raise ValueError("the grid needs at least 2 points along each axis")
    if not (np.isfinite(ax).all() and np.isfinite(ay).all()):
        raise ValueError("the grid coordinates must be finite")
    if not (np.all(np.diff(ax) > 0) and np.all(np.diff(ay) > 0)):
        raise ValueError("grid axes must increase strictly (build them with np.linspace)")
    n_classes = p.shape[2]
    if n_classes < 2:
        raise ValueError(
            f"probs has {n_classes} class; for one sigmoid output p pass np.stack([1 - p, p], -1)"
        )
    if not np.isfinite(p).all():
        raise ValueError("probs has NaN/Inf; the model's outputs are not finite on this grid")
    if p.min() < -1e-6 or p.max() > 1 + 1e-6 or not np.allclose(p.sum(-1), 1.0, atol=1e-3):
        raise ValueError(
            "probs must be probabilities (in [0, 1], summing to 1 over classes); "
            "apply softmax to the logits first"
        )
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"class_names has {len(names)} names but probs has {n_classes} classes")
    pts = []
    for i, pt in enumerate(points or ()):
        if not isinstance(pt, Mapping) or not {"x", "y", "label"} <= set(pt):
            raise ValueError(f"points[{i}] must be a dict with x, y and label; got {pt!r}")
        label = pt["label"]
        if not isinstance(label, int | np.integer) or not 0 <= int(label) < n_classes:
            raise ValueError(
                f"points[{i}]['label'] must be a class index in 0..{n_classes - 1}; got {label!r}"
            )
        marker = pt.get("marker", "train")
        if marker not in _MARKERS:
            raise ValueError(f"points[{i}]['marker'] must be 'train' or 'test'; got {marker!r}")
        x, y = float(pt["x"]), float(pt["y"])
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"points[{i}] has a non-finite coordinate ({x}, {y})")
        item: dict[str, Any] = {"x": x, "y": y, "label": int(label), "marker": marker}
        if "index" in pt:
            item["index"] = int(pt["index"])
        pts.append(item)
    arr = []
    for i, a in enumerate(arrows or ()):
        if not isinstance(a, Mapping) or not {"x", "y", "dx", "dy"} <= set(a):
            raise ValueError(f"arrows[{i}] must be a dict with x, y, dx, dy; got {a!r}")
        vals = [float(a[k]) for k in ("x", "y", "dx", "dy")]
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"arrows[{i}] has a non-finite value {vals}")
        arr.append(dict(zip(("x", "y", "dx", "dy"), vals, strict=True)))
    spec.update(
        x=pack(ax),
        y=pack(ay),
        probs=pack(p, "u8", lo=0.0, step=PROB_STEP),
        class_names=[str(n) for n in names],
        points=pts,
        arrows=arr,
        xlabel=_text(xlabel, "xlabel"),
        ylabel=_text(ylabel, "ylabel"),
    )
    return spec


def scatter(
    title: str,
    x: Any,
    y: Any,
    *,
    color_by: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    description: str = "",
) -> dict[str, Any]:
    """Points in 2-D (e.g. a PCA of a layer), with a selector to switch their colouring.

    ``x``, ``y``: ``(n,)``. ``color_by``: name -> ``(n,)`` values, one colouring each:
    integers are class indices (named by ``class_names``), bools and strings are categories
    (e.g. ``"correct"``/``"wrong"``), floats are a continuous scale (e.g. a unit's
    activation; diverging when they straddle 0). The first entry is shown first.
    Tooltips show each point's index.
    """
    spec = _base("scatter", title, description)
    xs = _numbers(x, "x", 1)
    ys = _numbers(y, "y", 1)
    if xs.shape != ys.shape:
        raise ValueError(f"x has {xs.size} points but y has {ys.size}")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise ValueError("x and y must be finite; drop the points that are NaN or Inf")
    colorings = []
    for name, values in (color_by or {}).items():
        if hasattr(values, "detach"):  # a torch tensor
            values = values.detach().cpu().numpy()
        arr = np.asarray(values)
        if arr.ndim != 1 or arr.size != xs.size:
            raise ValueError(
                f"color_by[{name!r}] has shape {arr.shape} but there are {xs.size} points; "
                "give one value per point"
            )
        if arr.dtype.kind == "f" or (
            arr.dtype.kind == "O" and all(v is None or isinstance(v, float) for v in arr)
        ):
            f = np.asarray([np.nan if v is None else v for v in arr.tolist()], dtype=np.float64)
            entry = {"type": "continuous", "values": pack(f, "f2")}
        else:
            entry = _categorical(arr.tolist(), f"color_by[{name!r}]", class_names)
        entry["name"] = str(name)
        colorings.append(entry)
    spec.update(
        x=pack(xs),
        y=pack(ys),
        color_by=colorings,
        xlabel=_text(xlabel, "xlabel"),
        ylabel=_text(ylabel, "ylabel"),
    )
    return spec


def thumbnails(
    title: str,
    maps: Any,
    *,
    labels: Sequence[Any] | None = None,
    marked: Sequence[bool] | None = None,
    mark_label: str = "dead",
    extent: Sequence[float] | None = None,
    shared_scale: bool = False,
    description: str = "",
) -> dict[str, Any]:
    """Small maps of each unit's response over the input plane, like Playground's neurons.

    ``maps``: ``(units, ny, nx)``, row 0 at the bottom (the lowest y). Drawn in the diverging
    palette centred on 0, each map on its own symmetric scale (``shared_scale=True``: one
    scale for all). Units flagged in ``marked`` get a red border and ``mark_label``.
    ``extent``: ``(xmin, xmax, ymin, ymax)`` of the plane, shown in tooltips.
    """
    spec = _base("thumbnails", title, description)
    m = _numbers(maps, "maps", 3)
    units = m.shape[0]
    flags = [False] * units
    if marked is not None:
        flags = [bool(v) for v in _to_list(marked)]
        if len(flags) != units:
            raise ValueError(f"marked has {len(flags)} entries but there are {units} maps")
    ext = None
    if extent is not None:
        ext = [float(v) for v in extent]
        if len(ext) != 4 or not all(math.isfinite(v) for v in ext):
            raise ValueError(f"extent must be 4 finite numbers (xmin, xmax, ymin, ymax); got {ext}")
    spec.update(
        maps=_symmetric_u8(m, shared=bool(shared_scale)),
        labels=_labels(labels, units, "labels") or [f"unit {i}" for i in range(units)],
        marked=flags,
        mark_label=_text(mark_label, "mark_label"),
        extent=ext,
        shared_scale=bool(shared_scale),
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
) -> dict[str, Any]:
    """A table of strings and numbers; the front-end sorts it by a click on a header."""
    spec = _base("table", title, description)
    cols = [_text(c, "column name") for c in _to_list(columns)]
    if not cols:
        raise ValueError("columns must name at least one column")
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


def images(
    title: str,
    images: Any,
    *,
    labels: Sequence[Any] | None = None,
    cmap: str = "gray",
    shared_scale: bool = False,
    description: str = "",
) -> dict[str, Any]:
    """A grid of small images, e.g. 8x8 digits or their per-class saliency.

    ``images``: ``(n, h, w)``, row 0 at the top. ``cmap``: ``"gray"``, ``"viridis"`` or
    ``"diverging"`` (centred on 0). Each image is scaled on its own unless ``shared_scale``.
    """
    spec = _base("images", title, description)
    imgs = _numbers(images, "images", 3)
    n = imgs.shape[0]
    spec.update(
        images=pack(imgs, "f2"),
        labels=_labels(labels, n, "labels") or [str(i) for i in range(n)],
        cmap=_check_cmap(cmap),
        shared_scale=bool(shared_scale),
    )
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
    ``slider``, ``table`` or ``findings``). Scatter and line frames share their axes' range
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
    if kind in ("slider", "table", "findings"):
        raise ValueError(f"a slider cannot hold {kind!r} frames")
    names = _labels(frame_labels, len(fr), "frame_labels")
    spec.update(frames=[dict(f) for f in fr], frame_labels=names, frame_kind=kind)
    return spec
