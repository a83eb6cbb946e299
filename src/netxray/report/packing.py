"""Compact arrays for the report's payload: base64 of small binary codes, each array stored once.

A chart spec holds its numeric arrays *packed*: ``{"$nd": encoding, "shape": [...],
"data": base64, ...}`` instead of nested JSON lists, which cost 6-8 characters a number.
:func:`share` then moves every packed array into the payload's ``"arrays"`` list, once per
distinct array, and leaves ``{"$ref": i}`` where it was; the page (``web/core.js``) decodes
both forms back into nested arrays before drawing, with ``null`` for NaN/Inf.

Encodings, all little-endian, and how far a decoded value may be from the original:

========  ==================================================  =================================
``f4``    float32                                             relative ``2**-24`` (float32)
``f8``    float64, where float32 cannot hold a value          exact
``f2``    float16 of ``value / 2**exp``; ``exp`` is chosen so  relative ``2**-11`` for every
          the largest value fits (``f4`` past ``2**1000``)     value above ``max|v| * 2**-27``
``u8``    ``lo + step * code``, code 255 = NaN/Inf; ``lo``,   absolute ``step / 2``
          ``step``: numbers, or one per slice of axis 0
========  ==================================================  =================================

``f2`` suits pictures (maps, images, heatmaps): as precise as the 4 significant digits reports
used to keep, in a third of the space. ``u8`` suits values of a known range such as
probabilities (``lo=0, step=1/254``, absolute error 0.002). :func:`unpack` decodes in Python
and :func:`tolerance` states each encoding's bound, so tests can check a written page.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["ENCODINGS", "is_packed", "pack", "share", "tolerance", "unpack"]

#: the encodings :func:`pack` writes and the page decodes
ENCODINGS = ("f4", "f8", "f2", "u8")
_F2_TOP = 2.0**14  # the largest |value| after scaling; float16 holds up to 65504
_NULL_U8 = 255
_F2_MAX = 2.0**1000  # beyond this, ``f2`` is written as ``f4`` (or ``f8``)


def _as_float(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=np.float64)


def _per_slice(v: Any, a: np.ndarray, name: str) -> np.ndarray:
    """A scalar, or one value per slice along the first axis, broadcast against ``a``."""
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim == 0:
        return arr
    if arr.ndim != 1 or a.ndim == 0 or len(arr) != a.shape[0]:
        raise ValueError(f"{name} must be a number or one number per slice of the first axis "
                         f"({a.shape[0] if a.ndim else 0}); got shape {arr.shape}")
    return arr.reshape((-1,) + (1,) * (a.ndim - 1))


def _fits_float32(a: np.ndarray) -> bool:
    m = np.abs(a[np.isfinite(a)])
    m = m[m > 0]
    f32 = np.finfo(np.float32)
    return not m.size or (m.max() <= f32.max and m.min() >= f32.smallest_normal)


def pack(values: Any, encoding: str = "f4", *, lo: Any = None, step: Any = None) -> dict[str, Any]:
    """``values`` (any shape; NaN/Inf allowed) as a JSON-ready packed array.

    ``f4`` becomes ``f8`` (float64) for values float32 cannot hold (beyond 3.4e38, or nonzero
    below 1.2e-38), so nothing is lost. ``u8`` needs ``lo`` and ``step``, each a number or one
    number per slice of the first axis: codes ``0..254`` stand for ``lo + step * code``, and
    values outside ``[lo, lo + 254 * step]`` are clipped to it.
    """
    a = _as_float(values)
    finite = np.isfinite(a)
    if encoding == "f2" and finite.any() and np.abs(a[finite]).max() > _F2_MAX:
        encoding = "f4"  # float16's rounding could overflow float64 near its top
    if encoding == "f4" and not _fits_float32(a):
        encoding = "f8"
    out: dict[str, Any] = {"$nd": encoding, "shape": list(a.shape)}
    if encoding in ("f4", "f8"):
        raw = a.astype("<f4" if encoding == "f4" else "<f8")
    elif encoding == "f2":
        top = float(np.abs(a[finite]).max()) if finite.any() else 0.0
        # log2(top) - 14, not log2(top / 2**14): that quotient underflows for subnormal tops
        exp = math.ceil(math.log2(top)) - round(math.log2(_F2_TOP)) if top > 0 else 0
        out["exp"] = exp
        scaled = np.ldexp(np.where(finite, a, 0.0), -exp)  # exact, no overflow of 2**-exp
        raw = np.where(finite, scaled, a).astype("<f2")
    elif encoding == "u8":
        if lo is None or step is None:
            raise ValueError("u8 packing needs lo and step: value = lo + step * code")
        lo_a, step_a = _per_slice(lo, a, "lo"), _per_slice(step, a, "step")
        if not (np.isfinite(lo_a).all() and np.isfinite(step_a).all() and (step_a > 0).all()):
            raise ValueError("u8 packing needs a finite lo and a finite step > 0")
        out.update(lo=lo_a.ravel().tolist() if lo_a.ndim else float(lo_a),
                   step=step_a.ravel().tolist() if step_a.ndim else float(step_a))
        codes = np.clip(np.rint((np.where(finite, a, 0.0) - lo_a) / step_a), 0, _NULL_U8 - 1)
        raw = np.where(finite, codes, _NULL_U8).astype(np.uint8)
    else:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    out["data"] = base64.b64encode(raw.tobytes()).decode("ascii")
    return out


def is_packed(value: Any) -> bool:
    """True for what :func:`pack` returns."""
    return isinstance(value, Mapping) and "$nd" in value


def unpack(packed: Mapping[str, Any]) -> np.ndarray:
    """The float64 array a packed one stands for (NaN where the original was NaN or Inf)."""
    enc = packed.get("$nd")
    raw = base64.b64decode(packed["data"])
    shape = tuple(packed["shape"])
    if enc in ("f4", "f8"):
        a = np.frombuffer(raw, dtype="<" + enc).astype(np.float64)
    elif enc == "f2":
        a = np.ldexp(np.frombuffer(raw, dtype="<f2").astype(np.float64), packed["exp"])
    elif enc == "u8":
        codes = np.frombuffer(raw, dtype=np.uint8).reshape(shape)
        lo, step = _per_slice(packed["lo"], codes, "lo"), _per_slice(packed["step"], codes, "step")
        return np.where(codes == _NULL_U8, np.nan, lo + step * codes)
    else:
        raise ValueError(f"unknown encoding {enc!r}; known: {', '.join(ENCODINGS)}")
    a = a.reshape(shape)
    return np.where(np.isfinite(a), a, np.nan)


def tolerance(packed: Mapping[str, Any], original: Any) -> np.ndarray:
    """Per element, how far :func:`unpack` may be from ``original`` under this encoding."""
    a = np.abs(_as_float(original))
    enc = packed["$nd"]
    if enc == "f4":
        return a * 2.0**-24
    if enc == "f8":
        return np.zeros(a.shape)
    if enc == "f2":  # half a float16 spacing: relative 2**-11, absolute below the normal range
        floor = 2.0 ** (packed["exp"] - 25)
        return np.maximum(a * 2.0**-11, floor)
    if enc == "u8":
        step = _per_slice(packed["step"], a, "step")
        return np.broadcast_to(step / 2 * (1 + 1e-9), a.shape)
    raise ValueError(f"unknown encoding {enc!r}; known: {', '.join(ENCODINGS)}")


def share(payload: Any) -> Any:
    """``payload`` with every packed array moved into ``payload["arrays"]``, once per distinct
    array (the same surface in two charts is stored once), and ``{"$ref": i}`` left in place."""
    table: list[dict[str, Any]] = []
    index: dict[tuple, int] = {}

    def walk(v: Any) -> Any:
        if is_packed(v):
            key = tuple(sorted((k, str(x)) for k, x in v.items()))
            if key not in index:
                index[key] = len(table)
                table.append(dict(v))
            return {"$ref": index[key]}
        if isinstance(v, Mapping):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [walk(x) for x in v]
        return v

    out = walk(payload)
    if table:
        out["arrays"] = table
    return out
