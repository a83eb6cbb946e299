"""weight_health's update ratio where it is not defined: NaN, never inf (a "huge update")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from netxray.health import weight_findings
from netxray.weights import weight_health

W = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(3, 3)


@pytest.mark.parametrize(
    "previous",
    [torch.zeros(3, 3), torch.full((3, 3), math.nan), torch.full((3, 3), math.inf),
     torch.eye(3) * math.inf],
    ids=["zeros", "nan", "inf", "partly-inf"],
)
def test_update_ratio_from_a_zero_or_nonfinite_previous_state_is_nan(previous):
    with np.errstate(all="ignore"):  # NumPy's own ratio: 0/0, inf/inf or x/0
        want = np.linalg.norm((W - previous).numpy()) / np.linalg.norm(previous.numpy())
    assert not np.isfinite(want)  # the reference: no finite ratio exists
    lw = weight_health({"w": W}, {"w": previous})["w"]
    assert math.isnan(lw.update_ratio)
    assert lw.finite and lw.spectral_norm == pytest.approx(np.linalg.norm(W.numpy(), 2))
    assert weight_findings(weight_health({"w": W}, {"w": previous}), steps=1) == []


def test_update_ratio_of_nonfinite_current_weights_is_nan():
    lw = weight_health({"w": torch.full((3, 3), math.inf)}, {"w": W})["w"]
    assert math.isnan(lw.update_ratio) and not lw.finite


def test_update_ratio_is_none_without_a_previous_state_and_finite_with_one():
    assert weight_health({"w": W})["w"].update_ratio is None
    assert weight_health({"w": W}, {"other": W})["w"].update_ratio is None
    W0 = W + 0.5 * torch.ones(3, 3)
    want = np.linalg.norm((W - W0).numpy()) / np.linalg.norm(W0.numpy())
    assert weight_health({"w": W}, {"w": W0})["w"].update_ratio == pytest.approx(want, rel=1e-12)


def test_a_previous_state_of_another_shape_raises():
    with pytest.raises(ValueError, match=r"previous weights for 'w' have shape \(9, 1\)"):
        weight_health({"w": W}, {"w": W.reshape(9, 1)})
