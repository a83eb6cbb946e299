"""The ``network`` chart: a network drawn as a diagram, like TensorFlow Playground's.

Columns of units (the input features first, the outputs last), each unit drawn as a
thumbnail of its response over the input plane, and every link between two columns drawn
with a width set by ``|weight|`` and a colour by its sign (blue positive, orange negative).
Dead units are greyed, saturated ones marked. The page draws it with
``web/charts-network.js``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from netxray.report.chart_spec import _base, _labels, _numbers, _symmetric_u8, _text
from netxray.report.packing import pack

__all__ = ["network"]


def _flags(value: Any, units: int, name: str) -> list[bool]:
    if value is None:
        return [False] * units
    flags = [bool(v) for v in np.asarray(value).reshape(-1).tolist()]
    if len(flags) != units:
        raise ValueError(f"{name} has {len(flags)} entries but the layer has {units} units")
    return flags


def network(
    title: str,
    layers: Sequence[Mapping[str, Any]],
    weights: Sequence[Any],
    *,
    extent: Sequence[float] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """A network diagram.

    ``layers``: one dict per column, input first: ``{"name": str, "maps": (units, m, m)
    responses over the plane (row 0 at the bottom), "labels": optional unit names, "dead":
    optional (units,) bools, "saturated": optional (units,) bools}``. ``weights``: one
    ``(units of column i + 1, units of column i)`` matrix per pair of neighbouring columns
    (a linear layer's ``weight``). ``extent``: ``(xmin, xmax, ymin, ymax)`` of the plane.
    """
    spec = _base("network", title, description)
    if not isinstance(layers, Sequence) or len(layers) < 2:
        raise ValueError("layers must list at least an input and an output column")
    if len(weights) != len(layers) - 1:
        raise ValueError(f"weights has {len(weights)} matrices but {len(layers)} columns need "
                         f"{len(layers) - 1}, one between each pair of neighbours")
    cols = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or "maps" not in layer:
            raise ValueError(f"layers[{i}] must be a dict with 'maps' (units, m, m)")
        maps = _numbers(layer["maps"], f"layers[{i}]['maps']", 3)
        units = maps.shape[0]
        name = _text(str(layer.get("name", f"layer {i}")), f"layers[{i}]['name']")
        cols.append({
            "name": name,
            "maps": _symmetric_u8(maps, shared=False),
            "labels": _labels(layer.get("labels"), units, f"layers[{i}]['labels']")
            or [f"{name} {u}" for u in range(units)],
            "dead": _flags(layer.get("dead"), units, f"layers[{i}]['dead']"),
            "saturated": _flags(layer.get("saturated"), units, f"layers[{i}]['saturated']"),
        })
    links = []
    for i, w in enumerate(weights):
        m = _numbers(w, f"weights[{i}]", 2)
        want = (len(cols[i + 1]["dead"]), len(cols[i]["dead"]))
        if m.shape != want:
            raise ValueError(f"weights[{i}] has shape {m.shape}; between columns {i} and "
                             f"{i + 1} it must be {want} (out units, in units)")
        links.append(pack(m))
    ext = None
    if extent is not None:
        ext = [float(v) for v in extent]
        if len(ext) != 4 or not all(math.isfinite(v) for v in ext):
            raise ValueError(f"extent must be 4 finite numbers (xmin, xmax, ymin, ymax); got {ext}")
    spec.update(layers=cols, links=links, extent=ext)
    return spec
