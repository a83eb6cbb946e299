"""Packed arrays in the report's payload: each encoding within its stated tolerance, and
every distinct array stored once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from netxray.report import chart_spec, charts, payload_json
from netxray.report.packing import ENCODINGS, is_packed, pack, share, tolerance, unpack

_FLOATS = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=64),
)


def _check(packed: dict, original: np.ndarray) -> None:
    back = unpack(packed)
    assert back.shape == original.shape and back.dtype == np.float64
    finite = np.isfinite(original)
    assert np.isnan(back[~finite]).all()  # NaN and +-Inf come back as gaps
    err = np.abs(back - original)[finite]
    assert (err <= tolerance(packed, original)[finite]).all(), err.max()
    json.dumps(packed, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(_FLOATS)
def test_float_encodings_stay_within_their_tolerance(a: np.ndarray) -> None:
    for enc in ("f4", "f2"):
        p = pack(a, enc)
        assert p["$nd"] in ENCODINGS
        _check(p, a)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                  elements=st.floats(0, 1)))
def test_probabilities_in_one_byte_are_within_1_over_508(p: np.ndarray) -> None:
    packed = pack(p, "u8", lo=0.0, step=chart_spec.PROB_STEP)
    _check(packed, p)
    assert np.abs(unpack(packed) - p).max(initial=0) <= 1 / 508 + 1e-12
    assert len(packed["data"]) == 4 * -(-p.size // 3)  # one byte a value, in base64


def test_f2_keeps_relative_precision_at_any_scale() -> None:
    rng = np.random.default_rng(0)
    for scale in (1e-30, 1e-6, 1.0, 1e6, 1e30):
        a = rng.normal(size=500) * scale
        back = unpack(pack(a, "f2"))
        np.testing.assert_allclose(back, a, rtol=2**-11)
        assert (back == 0).sum() == 0


def test_u8_per_slice_scales_and_exact_zero() -> None:
    maps = np.stack([np.linspace(-2, 2, 9), np.zeros(9), np.linspace(0, 1e-3, 9)]).reshape(3, 3, 3)
    top = np.abs(maps).max(axis=(1, 2))
    step = np.where(top > 0, top / 127, 1.0)
    p = pack(maps, "u8", lo=-(step * 127), step=step)
    back = unpack(p)
    _check(p, maps)
    assert (back[1] == 0).all() and back[0, 1, 1] == 0.0
    np.testing.assert_array_equal(np.abs(back).max(axis=(1, 2)), top)  # each map's own scale
    with pytest.raises(ValueError, match="one number per slice"):
        pack(maps, "u8", lo=0.0, step=[1.0, 2.0])
    with pytest.raises(ValueError, match="lo and step"):
        pack(maps, "u8")
    with pytest.raises(ValueError, match="step > 0"):
        pack(maps, "u8", lo=0.0, step=0.0)
    with pytest.raises(ValueError, match="unknown encoding 'f3'"):
        pack(maps, "f3")


def test_share_stores_each_distinct_array_once() -> None:
    g = np.linspace(0, 1, 30)
    p1 = np.add.outer(g, g) / 2
    probs = np.stack([1 - p1, p1], -1)
    a = charts.surface("a", g, g, probs)
    b = charts.surface("b", g, g, probs, points=[{"x": 0.5, "y": 0.5, "label": 1}])
    c = charts.surface("c", g, g, probs[::-1].copy())
    payload = {"title": "t", "sections": [{"id": "s", "title": "S", "charts": [a, b, c]}]}
    data = json.loads(payload_json(payload))
    # x and y axes (one array: the same grid), a and b's probs, c's probs
    assert len(data["arrays"]) == 3
    ca, cb, cc = data["sections"][0]["charts"]
    assert ca["probs"] == cb["probs"] != cc["probs"] and ca["x"] == ca["y"] == cc["x"]
    assert all(set(v) == {"$ref"} for v in (ca["x"], ca["probs"], cc["probs"]))
    assert not any(is_packed(v) for v in ca.values())
    # inline, the second surface and four of the six axes would be written again
    inline = json.dumps(payload, separators=(",", ":"))
    once = json.dumps(data, separators=(",", ":"))
    assert len(inline) - len(once) > len(a["probs"]["data"]) + 4 * len(a["x"]["data"])
    assert share({"title": "no arrays"}) == {"title": "no arrays"}


def test_f2_packs_subnormal_values() -> None:
    """The scale exponent of a subnormal maximum (hypothesis found 5e-324): log2 of the
    quotient by 2**14 underflowed to log2(0)."""
    for a in (np.array([5e-324]), np.array([1e-310, -3e-320, 0.0])):
        _check(pack(a, "f2"), a)
