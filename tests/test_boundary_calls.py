"""Unit maps, grid warps and hidden frames per call of a shared module, per feature of a
``(batch, seq, features)`` layer, and dead smooth gates, against layers run by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

from netxray.boundary import boundary_evolution, grid_warp, unit_maps


class Shared(nn.Module):
    """One ReLU called twice per forward pass, as in torchvision's BasicBlock."""

    def __init__(self, hidden: int = 6, shift: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(2, hidden), nn.Linear(hidden, hidden)
        self.relu, self.out = nn.ReLU(), nn.Linear(hidden, 2)
        with torch.no_grad():
            self.fc2.bias += shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.relu(self.fc2(self.relu(self.fc1(x)))))


def calls_by_hand(m: Shared, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        a1 = m.relu(m.fc1(x))
        return a1.numpy(), m.relu(m.fc2(a1)).numpy()


def grid_inputs(xx: np.ndarray, yy: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.column_stack([xx.ravel(), yy.ravel()]), dtype=torch.float32)


def distances(P: np.ndarray) -> np.ndarray:
    return np.linalg.norm(P[:, None] - P[None], axis=-1)


def test_unit_maps_give_each_call_of_a_shared_module_its_maps_and_dead_marks() -> None:
    m = Shared(shift=-3.0).eval()  # the second call's units are all off on the data
    X = torch.randn(80, 2, generator=torch.Generator().manual_seed(1))
    um = unit_maps(m, X, resolution=8)
    assert um.layers == ["relu", "relu#1"]
    assert um.kinds == {"relu": "ReLU", "relu#1": "ReLU"}
    g1, g2 = calls_by_hand(m, grid_inputs(um.xx, um.yy))
    np.testing.assert_allclose(um.maps["relu"].reshape(6, -1).T, g1, atol=1e-6)
    np.testing.assert_allclose(um.maps["relu#1"].reshape(6, -1).T, g2, atol=1e-6)
    x1, x2 = calls_by_hand(m, X)
    np.testing.assert_array_equal(um.dead["relu"], ~(x1 > 0).any(0))
    np.testing.assert_array_equal(um.dead["relu#1"], ~(x2 > 0).any(0))
    assert um.dead["relu#1"].all() and not um.dead["relu"].all()

    second = unit_maps(m, X, layers="relu#1", resolution=8)  # the second call alone
    assert second.layers == ["relu#1"]
    np.testing.assert_array_equal(second.maps["relu#1"], um.maps["relu#1"])
    for mod in m.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks


def test_boundary_evolution_hidden_layer_is_one_call() -> None:
    m = Shared().eval()
    X = torch.randn(60, 2, generator=torch.Generator().manual_seed(2))
    state = {k: v.clone() for k, v in m.state_dict().items()}
    ck = {0: state, 1: state}
    x1, x2 = calls_by_hand(m, X)
    for name, H in (("relu", x1), ("relu#1", x2)):
        ev = boundary_evolution(m, ck, X, resolution=6, hidden_layer=name)
        assert ev.hidden_layer == name and ev.hidden.shape == (2, 60, 2)
        ref = PCA(2).fit_transform(H.astype(np.float64))  # frames are aligned: isometries
        np.testing.assert_allclose(distances(ev.hidden[0]), distances(ref), atol=1e-5)
    with pytest.raises(ValueError, match="relu#2"):
        boundary_evolution(m, ck, X, resolution=6, hidden_layer="relu#2")


def test_grid_warp_draws_each_call_of_a_shared_2_unit_module() -> None:
    m = Shared(hidden=2).eval()
    X = torch.randn(40, 2, generator=torch.Generator().manual_seed(3))
    gw = grid_warp(m, X, n_lines=3, points_per_line=5)
    assert gw.layers == ["fc1", "fc2", "relu", "relu#1", "out"]
    x1, x2 = calls_by_hand(m, X)
    np.testing.assert_allclose(gw.points["relu"], x1, atol=1e-6)
    np.testing.assert_allclose(gw.points["relu#1"], x2, atol=1e-6)
    g1, g2 = calls_by_hand(m, torch.tensor(gw.grid_lines.reshape(-1, 2), dtype=torch.float32))
    np.testing.assert_allclose(gw.lines["relu#1"].reshape(-1, 2), g2, atol=1e-6)
    only = grid_warp(m, X, layers="relu#1", n_lines=3, points_per_line=5)
    assert only.layers == ["relu#1"]
    np.testing.assert_allclose(only.points["relu#1"], x2, atol=1e-6)


def test_analyze_names_each_call_alike_in_every_section() -> None:
    from netxray import data, train
    from netxray.analysis import analyze

    m = Shared()
    tr, te = data.moons(n_samples=120, noise=0.25, seed=5).split(test_size=0.3, seed=5)
    h = train(m, tr.tensors(), epochs=5, lr=0.3, checkpoints=[0, 5])
    m.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = analyze(m, tr, te, h, progress=False)
    names = ["relu", "relu#1"]
    assert list(a.layers) == names and a.unit_maps.layers == names and list(a.hidden) == names
    assert set(names) <= set(a.projections) and set(names) <= set(a.activation_maps)
    assert set(names) <= set(a.health.stats.layers)
    x1, x2 = calls_by_hand(m, torch.as_tensor(tr.X, dtype=torch.float32))
    np.testing.assert_allclose(a.hidden["relu"], x1, atol=1e-6)
    np.testing.assert_allclose(a.hidden["relu#1"], x2, atol=1e-6)
    assert a.evolution.hidden_layer == "relu#1"  # the last hidden layer: the second call
    ref = PCA(2).fit_transform(x2.astype(np.float64))
    np.testing.assert_allclose(distances(a.evolution.hidden[-1]), distances(ref), atol=1e-4)


def test_unit_maps_of_a_sequence_layer_map_its_features() -> None:
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Flatten(), nn.Linear(20, 2)).eval()
    with torch.no_grad():
        m[0].bias[:2] = -100.0  # units 0 and 1 are off at every step
    X = torch.randn(60, 4, 3, generator=torch.Generator().manual_seed(4))
    um = unit_maps(m, X, layers=["0", "1"], resolution=6)
    assert um.maps["1"].shape == (5, 6, 6)  # 5 features, not 4 steps
    inputs = torch.as_tensor(um.origin, dtype=torch.float32) + grid_inputs(um.xx, um.yy) @ (
        torch.as_tensor(um.basis, dtype=torch.float32))
    with torch.no_grad():
        out = m[1](m[0](inputs.reshape(-1, 4, 3)))  # (grid, steps, features)
        on_data = m[1](m[0](X))
    np.testing.assert_allclose(um.maps["1"].reshape(5, -1).T, out.mean(1).numpy(), atol=1e-4)
    np.testing.assert_array_equal(um.dead["1"], ~(on_data > 0).flatten(0, 1).any(0).numpy())
    assert um.dead["1"].tolist() == [True, True, False, False, False]
    assert not um.dead["0"].any()


@pytest.mark.parametrize("act", [nn.GELU, nn.SiLU])
def test_unit_maps_mark_the_smooth_gate_units_diagnose_calls_dead(act) -> None:
    from netxray.health import diagnose

    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(2, 6), act(), nn.Linear(6, 2)).eval()
    with torch.no_grad():
        m[0].bias[:3] = torch.tensor([-50.0, -50.0, -2.0])  # -2: small but alive, not dead
    X = torch.randn(300, 2, generator=torch.Generator().manual_seed(5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = diagnose(m, (X, torch.randint(0, 2, (300,))), progress=False)
    said = {f.layer: set(f.units) for f in rep.findings if f.kind == "dead_units"}
    um = unit_maps(m, X, resolution=6)
    assert set(np.flatnonzero(um.dead["1"]).tolist()) == said.get("1", set())
    with torch.no_grad():
        out = m[1](m[0](X)).numpy()  # by hand: never > 0 and always within 1e-3 of 0
    hand = ~(out > 0).any(0) & (np.abs(out).max(0) <= 1e-3)
    np.testing.assert_array_equal(um.dead["1"], hand)
    assert um.dead["1"].tolist() == [True, True, False, False, False, False]
