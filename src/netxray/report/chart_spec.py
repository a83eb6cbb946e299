"""What every chart spec shares: the chart kinds, input checks, and compact codes.

The chart builders (:mod:`netxray.report.charts` and :mod:`netxray.report.plane_charts`)
validate their inputs with these helpers, so every kind reports a bad input the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from netxray.report.packing import pack

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
    "tokens",
    "network",
    "controls",
)

#: Severities a finding may have, most to least serious.
SEVERITIES = ("critical", "error", "warning", "info", "ok")

_CMAPS = ("viridis", "diverging", "gray")
_MARKERS = ("train", "test")
#: Probabilities are stored as 8-bit codes of this step: 0 and 1 exact, any value within 1/508.
PROB_STEP = 1.0 / 254.0


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


_LINK = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")


def _link_set(value: Any, name: str = "link") -> str:
    """A sample-set name for linked highlighting (e.g. ``"train"``): charts that name the
    same set light up each other's samples of equal index (docs/report.md, "Linked charts")."""
    if not isinstance(value, str) or not _LINK.match(value):
        raise ValueError(f"{name} must name a sample set: a letter, then up to 63 letters, "
                         f"digits or '_.:-' (e.g. 'train'); got {value!r}")
    return value


def _sample_index(index: Any, n: int) -> dict[str, Any]:
    """``(n,)`` sample indices (ints >= 0), packed exactly (float64 when beyond float32's 2**24)."""
    arr = np.asarray(_to_list(index))
    if arr.shape != (n,):
        raise ValueError(f"index has {arr.size} entries but there are {n} points; give one "
                         "sample index per point")
    if n and (arr.dtype.kind not in "iu" or arr.min() < 0):
        raise ValueError("index must hold sample indices: integers >= 0")
    values = arr.astype(np.float64)
    return pack(values, "f4" if n == 0 or values.max() < 2**24 else "f8")


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
