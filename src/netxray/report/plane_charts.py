"""Chart specs over a plane or a grid of pictures: decision surfaces, scatter plots of
projections, unit thumbnails and images. See :mod:`netxray.report.charts` for the format."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from netxray.report.chart_spec import (
    _MARKERS,
    PROB_STEP,
    _as_array,
    _base,
    _categorical,
    _check_cmap,
    _labels,
    _link_set,
    _numbers,
    _sample_index,
    _symmetric_u8,
    _text,
    _to_list,
)
from netxray.report.packing import pack


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
    gradient: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    description: str = "",
    link: Mapping[str, str] | None = None,
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
    ``gradient``: a vector field shown on hover, ``{"x": (mx,), "y": (my,), "dx": (my, mx),
    "dy": (my, mx)}`` plus an optional ``"label"`` (what it is the gradient of): the page
    draws, at the cursor, the arrow of the nearest grid point, scaled by the field's largest
    magnitude, and its value in the tooltip (see :func:`gradient_field`).
    ``link``: marker -> sample set (e.g. ``{"train": "train", "test": "test"}``): a point's
    ``"index"`` is its sample in that set, and hovering it lights up the same sample in
    every chart linked to the set (docs/report.md, "Linked charts").
    """
    spec = _base("surface", title, description)
    if link is not None:
        if not isinstance(link, Mapping) or not set(link) <= set(_MARKERS):
            raise ValueError("link must map a marker ('train', 'test') to a sample set name; "
                             f"got {link!r}")
        spec["link"] = {m: _link_set(v, f"link[{m!r}]") for m, v in link.items()}
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
    if gradient is not None:
        spec["gradient"] = gradient_field(gradient)
    return spec


def blank_surface(title: str, xx: Any, yy: Any, note: str, *, class_names: Sequence[str],
                  **kwargs: Any) -> dict[str, Any]:
    """A :func:`surface` frame with no surface to draw, e.g. where a model's outputs are
    NaN/Inf: the grid, points and labels as ``surface`` checks them, every probability NaN
    (packed as "not a number", so the page paints the plane blank rather than from garbage),
    and ``note`` (why there is no surface) as the frame's description. For a slider whose
    other frames are surfaces; ``surface`` itself still refuses non-finite ``probs``.
    """
    gx, gy = _as_array(xx, "xx"), _as_array(yy, "yy")
    k = len(class_names)
    if k < 2:
        raise ValueError(f"class_names has {k} names; a surface has 2 classes or more")
    grid = gx.shape if gx.ndim == 2 else (gy.size, gx.size)
    spec = surface(title, gx, gy, np.full((*grid, k), 1.0 / k), class_names=class_names,
                   description=note, **kwargs)
    spec["probs"] = pack(np.full(spec["probs"]["shape"], np.nan), "u8", lo=0.0, step=PROB_STEP)
    return spec


def gradient_field(field: Mapping[str, Any]) -> dict[str, Any]:
    """A surface's hover arrows, checked and packed: ``{"x", "y", "dx", "dy", "label"}``.

    ``x`` ``(mx,)`` and ``y`` ``(my,)``: the field's grid axes, increasing, 2 points or more
    each (any grid; the surface's own is the natural one); ``dx``, ``dy`` ``(my, mx)``: the
    vector's components at ``(x[i], y[j])`` in row ``j``, column ``i``, all finite (replace
    NaN with 0 where a model diverged). ``label`` (optional): what the field is, shown in the
    tooltip (e.g. ``"dP(top class)/dx"``).
    """
    if not isinstance(field, Mapping) or not {"x", "y", "dx", "dy"} <= set(field):
        got = sorted(field) if isinstance(field, Mapping) else type(field).__name__
        raise ValueError("gradient must be a dict with x (mx,), y (my,), dx and dy (my, mx); "
                         f"got {got}")
    unknown = set(field) - {"x", "y", "dx", "dy", "label"}
    if unknown:
        raise ValueError(f"gradient has unknown keys {sorted(unknown)}; it takes x, y, dx, dy "
                         "and label")
    gx = _numbers(field["x"], "gradient['x']", 1)
    gy = _numbers(field["y"], "gradient['y']", 1)
    if gx.size < 2 or gy.size < 2:
        raise ValueError("gradient's grid needs at least 2 points along each axis")
    for name, ax in (("x", gx), ("y", gy)):
        if not np.isfinite(ax).all() or not np.all(np.diff(ax) > 0):
            raise ValueError(f"gradient['{name}'] must be finite and increase strictly "
                             "(build it with np.linspace)")
    comps = {}
    for name in ("dx", "dy"):
        v = _numbers(field[name], f"gradient[{name!r}]", 2)
        if v.shape != (gy.size, gx.size):
            raise ValueError(f"gradient[{name!r}] has shape {v.shape}; it must be (len(y), "
                             f"len(x)) = ({gy.size}, {gx.size}), row j at y[j]")
        if not np.isfinite(v).all():
            raise ValueError(f"gradient[{name!r}] has NaN/Inf; replace them (e.g. "
                             "np.nan_to_num) or leave the field out")
        comps[name] = pack(v, "f2")
    return {"x": pack(gx), "y": pack(gy), **comps,
            "label": _text(field.get("label", "gradient"), "gradient['label']")}


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
    link: str | None = None,
    index: Any = None,
) -> dict[str, Any]:
    """Points in 2-D (e.g. a PCA of a layer), with a selector to switch their colouring.

    ``x``, ``y``: ``(n,)``. ``color_by``: name -> ``(n,)`` values, one colouring each:
    integers are class indices (named by ``class_names``), bools and strings are categories
    (e.g. ``"correct"``/``"wrong"``), floats are a continuous scale (e.g. a unit's
    activation; diverging when they straddle 0). The first entry is shown first.
    Tooltips show each point's index. The page zooms (wheel) and pans (drag) the plot.
    ``link``: the sample set the points belong to (e.g. ``"train"``), ``index``: ``(n,)``
    each point's sample in it (default: point ``i`` is sample ``i``); hovering a point lights
    up the same sample in every chart linked to the set (docs/report.md, "Linked charts").
    """
    spec = _base("scatter", title, description)
    xs = _numbers(x, "x", 1)
    ys = _numbers(y, "y", 1)
    if xs.shape != ys.shape:
        raise ValueError(f"x has {xs.size} points but y has {ys.size}")
    if link is not None:
        spec["link"] = _link_set(link)
        if index is not None:
            spec["index"] = _sample_index(index, xs.size)
    elif index is not None:
        raise ValueError("index names each point's sample in a set; give link (the set) too")
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
