"""The surface's hover arrows: the playground's input-gradient field and the spec's ``gradient``.

The field is checked against central finite differences of the model's own probability in
float64 (an independent reference: no autograd), and against ``netxray.Saliency`` on the
softmax of the model (the library's attribution path).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from netxray.report import charts
from netxray.report.html import payload_json
from netxray.report.packing import tolerance, unpack
from netxray.serve.frames import frame_patches
from netxray.serve.playground import PlaygroundSession
from netxray.serve.playground_config import PlayConfig, preset
from netxray.serve.settings import Limits

L = Limits()
ALL_FEATURES = ("x1", "x2", "x1^2", "x2^2", "x1x2", "sin_x1", "sin_x2")


pytestmark = pytest.mark.usefixtures("one_thread")


def _finite_differences(model: nn.Module, xs: np.ndarray, ys: np.ndarray,
                        h: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of P(predicted class) at every grid point, in float64:
    ``(ny, nx, 2)`` and the gap between the top two probabilities ``(ny, nx)``."""
    m64 = copy.deepcopy(model).double()
    gx, gy = np.meshgrid(xs, ys)
    P = torch.as_tensor(np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float64)
    with torch.no_grad():
        p = torch.softmax(m64(P), 1)
        top2 = p.topk(2, dim=1).values
        k = p.argmax(1, keepdim=True)
        fd = []
        for d in range(2):
            e = torch.zeros(2, dtype=torch.float64)
            e[d] = h
            up = torch.softmax(m64(P + e), 1).gather(1, k)
            down = torch.softmax(m64(P - e), 1).gather(1, k)
            fd.append(((up - down) / (2 * h))[:, 0])
    shape = (len(ys), len(xs))
    return (torch.stack(fd, 1).reshape(*shape, 2).numpy(),
            (top2[:, 0] - top2[:, 1]).reshape(shape).numpy())


@pytest.mark.parametrize("config", [
    PlayConfig(),                                                       # 2-4-2-2 tanh, x1, x2
    PlayConfig(features=ALL_FEATURES, hidden=(6, 5), activation="gelu", dataset="spiral",
               classes=3, resolution=30),                               # every feature, 3 classes
    PlayConfig(features=("x1^2", "sin_x2", "x1x2"), activation="sigmoid", hidden=(5,),
               dataset="xor", optimizer="adam", lr=0.03),
])
def test_input_gradient_matches_finite_differences_on_the_whole_grid(config):
    s = PlaygroundSession(config, L)
    for _ in range(5):
        f = s.step()
    g = f.input_grad
    assert g.shape == (len(f.ys), len(f.xs), 2)
    fd, gap = _finite_differences(s.model, f.xs, f.ys)
    # points where float32 and float64 could pick different top classes are left out
    sure = gap > 1e-4
    assert sure.mean() > 0.95
    # tolerance: float32 autograd against float64 differences, relative to the field's scale
    scale = np.abs(fd).max()
    assert scale > 1e-3  # the network is not flat: the check can fail
    np.testing.assert_allclose(g[sure], fd[sure], rtol=1e-3, atol=1e-4 * scale)
    # the gradient of P(top) points where the top class strengthens: uphill in P(top)
    assert (np.einsum("...d,...d", g, fd)[sure] >= -1e-6 * scale**2).all()


def test_input_gradient_is_netxray_saliency_of_the_softmax():
    from netxray import Saliency

    s = PlaygroundSession(PlayConfig(features=ALL_FEATURES, hidden=(8, 4), activation="relu",
                                     init="he", dataset="moons"), L)
    for _ in range(3):
        f = s.step()
    gx, gy = np.meshgrid(f.xs, f.ys)
    P = torch.as_tensor(np.column_stack([gx.ravel(), gy.ravel()]), dtype=torch.float32)
    ref = Saliency(nn.Sequential(s.model, nn.Softmax(dim=1))).attribute(
        P, target="pred", abs=False).values.detach().numpy()
    np.testing.assert_allclose(f.input_grad.reshape(-1, 2), ref, rtol=1e-5, atol=1e-7)


def test_surface_patch_carries_the_field_on_the_surface_grid():
    c = PlayConfig(resolution=25)
    s = PlaygroundSession(c, L)
    f = s.step()
    spec = frame_patches(f, c)["surface"]
    assert "saliency" not in frame_patches(f, c)  # the hover arrows replace the 9 x 9 card
    G = spec["gradient"]
    np.testing.assert_array_equal(unpack(G["x"]), unpack(spec["x"]))
    np.testing.assert_array_equal(unpack(G["y"]), unpack(spec["y"]))
    for d, name in enumerate(("dx", "dy")):
        got, want = unpack(G[name]), f.input_grad[..., d]
        assert got.shape == (25, 25)
        assert (np.abs(got - want) <= tolerance(G[name], want)).all()
    assert "P(predicted)" in G["label"]


def test_a_diverged_network_still_gives_a_valid_finite_field():
    c = preset("nan", L)
    s = PlaygroundSession(c, L)
    for _ in range(3):
        f = s.step()
    assert np.isfinite(f.input_grad).all()
    json.loads(payload_json({"title": "t", "sections": [
        {"id": "s", "title": "s", "charts": [frame_patches(f, c)["surface"]]}]}))


# ---------------------------------------------------------------- the spec
def _surface(**kw):
    gx, gy = np.linspace(-1, 1, 4), np.linspace(-2, 2, 3)
    p1 = np.full((3, 4), 0.3)
    return charts.surface("s", gx, gy, np.stack([1 - p1, p1], -1), **kw)


def test_gradient_spec_is_packed_and_round_trips():
    x, y = np.linspace(-1, 1, 5), np.linspace(0, 1, 2)
    dx = np.arange(10.0).reshape(2, 5) - 4.5
    dy = -dx * 1e-3
    G = _surface(gradient={"x": x, "y": y, "dx": dx, "dy": dy, "label": "dP/dx"})["gradient"]
    assert G["label"] == "dP/dx" and G["dx"]["$nd"] == "f2"
    np.testing.assert_array_equal(unpack(G["x"]), x.astype(np.float32))
    for name, want in (("dx", dx), ("dy", dy)):
        assert (np.abs(unpack(G[name]) - want) <= tolerance(G[name], want)).all()
    assert "gradient" not in _surface()  # optional
    assert _surface(gradient={"x": x, "y": y, "dx": dx, "dy": dy})["gradient"]["label"]


@pytest.mark.parametrize("bad, message", [
    ([1, 2], "must be a dict"),
    ({"x": [0, 1], "y": [0, 1], "dx": np.zeros((2, 2))}, "must be a dict"),
    ({"x": [0, 1], "y": [0, 1], "dx": np.zeros((2, 2)), "dy": np.zeros((2, 2)), "z": 1},
     "unknown keys"),
    ({"x": [0], "y": [0, 1], "dx": np.zeros((2, 1)), "dy": np.zeros((2, 1))}, "at least 2"),
    ({"x": [1, 0], "y": [0, 1], "dx": np.zeros((2, 2)), "dy": np.zeros((2, 2))},
     "increase strictly"),
    ({"x": [0, 1, 2], "y": [0, 1], "dx": np.zeros((3, 2)), "dy": np.zeros((2, 3))},
     r"must be \(len\(y\), len\(x\)\) = \(2, 3\)"),
    ({"x": [0, 1], "y": [0, 1], "dx": np.zeros(4), "dy": np.zeros((2, 2))}, "must be 2-D"),
    ({"x": [0, 1], "y": [0, 1], "dx": [[0, np.nan], [0, 0]], "dy": np.zeros((2, 2))},
     "NaN/Inf"),
    ({"x": [0, 1], "y": [0, 1], "dx": np.zeros((2, 2)), "dy": np.zeros((2, 2)), "label": 3},
     "must be a string"),
])
def test_gradient_spec_refuses_bad_fields(bad, message):
    with pytest.raises(ValueError, match=message):
        _surface(gradient=bad)
