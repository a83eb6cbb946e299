"""Result objects serialize to plain data and round-trip through .npz without pickle."""

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from netxray._results import Result, to_plain


@dataclass(frozen=True)
class Example(Result):
    values: torch.Tensor
    coords: np.ndarray
    maps: dict[str, np.ndarray]
    name: str
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Other(Result):
    x: int


def test_save_load_roundtrip(tmp_path):
    r = Example(values=torch.arange(6.0).reshape(2, 3), coords=np.eye(2),
                maps={"a": np.ones((2, 2)), "b": np.zeros(3)}, name="tensor",
                params={"seed": 3, "nested": [1, 2.5]})
    path = r.save(tmp_path / "r.npz")
    back = Example.load(path)
    assert torch.equal(back.values, r.values)
    np.testing.assert_array_equal(back.coords, r.coords)
    np.testing.assert_array_equal(back.maps["a"], r.maps["a"])
    assert back.name == "tensor"  # a string field equal to a kind tag is still a string
    assert back.params == {"seed": 3, "nested": [1, 2.5]}
    with np.load(path, allow_pickle=False) as f:  # readable without pickle
        assert "coords" in f.files
    with pytest.raises(ValueError, match="holds a Example, not a Other"):
        Other.load(path)


def test_to_dict_is_json_with_nulls_for_non_finite():
    r = Example(values=torch.tensor([1.0, float("nan")]), coords=np.array([np.inf, 2.0]),
                maps={"a": np.array([1.0])}, name="n", params={"x": float("-inf")})
    text = json.dumps(r.to_dict(), allow_nan=False)
    d = json.loads(text)
    assert d["values"] == [1.0, None] and d["coords"] == [None, 2.0] and d["params"]["x"] is None


@given(st.recursive(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6),
              st.booleans(), st.none(), st.text(max_size=5)),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=20,
))
def test_to_plain_matches_a_direct_definition(value):
    def reference(v):  # the definition, written plainly
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {str(k): reference(x) for k, x in v.items()}
        if isinstance(v, list):
            return [reference(x) for x in v]
        return v

    assert to_plain(value) == reference(value)
    json.dumps(to_plain(value), allow_nan=False)


def test_numpy_and_torch_scalars_and_arrays():
    assert to_plain(np.float32(1.5)) == 1.5 and type(to_plain(np.int64(3))) is int
    assert to_plain(np.array([[1, 2]], dtype=np.int32)) == [[1, 2]]
    assert to_plain(torch.tensor([np.nan])) == [None]
    assert to_plain((1.0, float("nan"))) == [1.0, None]
