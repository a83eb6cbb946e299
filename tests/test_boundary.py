"""Decision surfaces, unit maps, grid warps and their evolution against closed forms."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from sklearn.decomposition import PCA
from torch import nn

from netxray.boundary import (
    BoundaryEvolution,
    BoundaryGrid,
    GridWarp,
    UnitMaps,
    boundary_evolution,
    decision_boundary,
    grid_warp,
    make_plane,
    unit_maps,
)


def net(sizes=(2, 6, 3), act=nn.ReLU, seed=0, dtype=torch.float32) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1], dtype=dtype))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "modes": [m.training for m in model.modules()],
        "grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
    }


def assert_untouched(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["modes"] == before["modes"] and after["grad"] == before["grad"]
    assert all(g is None for g in after["grads"])
    for k, v in before["state"].items():
        assert torch.equal(after["state"][k], v), k
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, np.ndarray]:
    X, y = make_moons(120, noise=0.2, random_state=0)
    return X.astype(np.float32), y


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ---------------------------------------------------------------- decision_boundary


def test_linear_model_on_2d_inputs_matches_closed_form(moons) -> None:
    X, _ = moons
    model = nn.Linear(2, 3, dtype=torch.float64)
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    before = snapshot(model)
    g = decision_boundary(model, X, resolution=30, margin=0.1)
    assert_untouched(model, before)
    assert isinstance(g, BoundaryGrid) and g.plane == "input"
    assert g.xx.shape == g.yy.shape == (30, 30) and g.probs.shape == (30, 30, 3)
    lo, hi = X.min(0), X.max(0)
    span = hi - lo
    assert g.xx[0, 0] == pytest.approx(lo[0] - 0.1 * span[0])
    assert g.xx[0, -1] == pytest.approx(hi[0] + 0.1 * span[0])
    assert g.yy[-1, 0] == pytest.approx(hi[1] + 0.1 * span[1])
    assert (g.xx[:, 3] == g.xx[0, 3]).all() and (g.yy[3] == g.yy[3, 0]).all()
    grid = np.stack([g.xx, g.yy], -1)
    np.testing.assert_allclose(g.probs, softmax(grid @ W.T + b), atol=1e-6)
    np.testing.assert_allclose(g.points, X, atol=1e-6)
    np.testing.assert_array_equal(g.predictions, g.probs.argmax(-1))


def test_single_logit_gives_sigmoid_two_classes(moons) -> None:
    X, _ = moons
    torch.manual_seed(0)  # (some draws put the whole surface between 0.5 and 0.73: a warning)
    model = nn.Linear(2, 1)
    g = decision_boundary(model, X, resolution=20)
    w, b = model.weight.detach().numpy()[0], float(model.bias.detach())
    p1 = 1 / (1 + np.exp(-(g.xx * w[0] + g.yy * w[1] + b)))
    np.testing.assert_allclose(g.probs[..., 1], p1, atol=1e-6)
    np.testing.assert_allclose(g.probs.sum(-1), 1.0, atol=1e-6)


class CountingNet(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        return self.inner(x)


def test_chunked_grid_equals_one_pass_and_bounds_batches(moons) -> None:
    X, _ = moons
    model = CountingNet(net())
    whole = decision_boundary(model, X, resolution=40, batch_size=10**6)
    model.sizes.clear()
    chunked = decision_boundary(model, X, resolution=40, batch_size=77)
    assert model.sizes[0] == 8  # the one input probe, then the grid in chunks of <= 77
    assert max(model.sizes) <= 77 and sum(model.sizes[1:]) == 1600
    np.testing.assert_allclose(chunked.probs, whole.probs, atol=1e-6)


def test_nd_inputs_use_the_pca_plane() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5)) @ rng.normal(size=(5, 5))
    model = nn.Linear(5, 2, dtype=torch.float64)
    g = decision_boundary(model, X, resolution=12)
    pca = PCA(2).fit(X)
    assert g.plane == "pca"
    np.testing.assert_allclose(g.points, pca.transform(X), atol=1e-9)
    np.testing.assert_allclose(g.origin, X.mean(0), atol=1e-12)
    np.testing.assert_allclose(g.basis @ g.basis.T, np.eye(2), atol=1e-12)
    # each grid point is origin + u e1 + v e2 in input space
    inputs = g.origin + np.stack([g.xx, g.yy], -1) @ g.basis
    W, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    np.testing.assert_allclose(g.probs, softmax(inputs @ W.T + b), atol=1e-6)
    np.testing.assert_allclose(g.to_plane(X[:5]), g.points[:5], atol=1e-12)


def test_plane_through_three_samples() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20, 4))
    origin, basis, kind = make_plane(X, (3, 7, 11))
    assert kind == "samples"
    np.testing.assert_allclose(origin, X[3])
    coords = (X[[3, 7, 11]] - origin) @ basis.T
    np.testing.assert_allclose(coords[0], [0, 0], atol=1e-12)
    assert coords[1, 0] == pytest.approx(np.linalg.norm(X[7] - X[3]))
    assert coords[1, 1] == pytest.approx(0, abs=1e-12)
    # the third point lies in the plane: its projection reconstructs it
    np.testing.assert_allclose(origin + coords[2] @ basis, X[11], atol=1e-12)
    # vectors work as well as indices
    o2, b2, _ = make_plane(X, (X[3], torch.as_tensor(X[7]), 11))
    np.testing.assert_allclose(b2, basis, atol=1e-12)
    with pytest.raises(ValueError, match="collinear"):
        make_plane(X, (0, 1, X[0] + 2 * (X[1] - X[0])))
    with pytest.raises(ValueError, match="out of range"):
        make_plane(X, (0, 1, 99))
    with pytest.raises(ValueError, match="2-D inputs"):
        make_plane(X, "input")


def test_image_inputs_are_reshaped() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 1, 3, 3)).astype(np.float32)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 4)).eval()
    g = decision_boundary(model, X, resolution=8)
    inputs = torch.as_tensor(
        g.origin + np.stack([g.xx, g.yy], -1).reshape(-1, 2) @ g.basis, dtype=torch.float32
    ).reshape(-1, 1, 3, 3)
    with torch.no_grad():
        want = torch.softmax(model(inputs), 1).numpy().reshape(8, 8, 4)
    np.testing.assert_allclose(g.probs, want, atol=1e-5)


def test_refuses_training_mode_dropout_and_bad_input(moons) -> None:
    X, _ = moons
    model = nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="eval"):
        decision_boundary(model, X)
    model.eval()
    with pytest.raises(ValueError, match="non-finite"):
        decision_boundary(model, np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="resolution"):
        decision_boundary(model, X, resolution=1)


def test_boundary_grid_round_trip(tmp_path, moons) -> None:
    g = decision_boundary(net(), moons[0], resolution=10)
    back = BoundaryGrid.load(g.save(tmp_path / "g.npz"))
    np.testing.assert_array_equal(back.probs, g.probs)
    np.testing.assert_array_equal(back.basis, g.basis)
    assert back.plane == g.plane


# ---------------------------------------------------------------- unit_maps


def test_unit_maps_match_closed_form_and_find_dead_units(moons) -> None:
    X, _ = moons
    model = net((2, 5, 2))
    with torch.no_grad():
        model[0].bias[1] = -100.0  # never positive on the data: dead
    before = snapshot(model)
    um = unit_maps(model, X, layers=["0", "1"], resolution=16)
    assert_untouched(model, before)
    assert isinstance(um, UnitMaps) and um.layers == ["0", "1"]
    assert um.kinds == {"0": "Linear", "1": "ReLU"}
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    pre = np.einsum("ij,abj->iab", W, np.stack([um.xx, um.yy], -1)) + b[:, None, None]
    np.testing.assert_allclose(um.maps["0"], pre, atol=1e-5)
    np.testing.assert_allclose(um.maps["1"], np.maximum(pre, 0), atol=1e-5)
    alive_by_hand = (np.maximum(X @ W.T + b, 0) > 0).any(0)
    np.testing.assert_array_equal(um.dead["1"], ~alive_by_hand)
    assert um.dead["1"][1] and not um.dead["0"].any()  # Linear layers are never "dead"


def test_unit_maps_default_layers_and_round_trip(tmp_path, moons) -> None:
    um = unit_maps(net((2, 4, 3, 2)), moons[0], resolution=8, batch_size=5)
    assert um.layers == ["1", "3"]  # the activation modules
    assert um.maps["1"].shape == (4, 8, 8) and um.maps["3"].shape == (3, 8, 8)
    back = UnitMaps.load(um.save(tmp_path / "um.npz"))
    for k in um.maps:
        np.testing.assert_allclose(back.maps[k], um.maps[k])
        assert back.dead[k].dtype == bool
        np.testing.assert_array_equal(back.dead[k], um.dead[k])


class Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self.act = nn.ReLU()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        h = self.act(self.fc(x))
        if self.calls > 1:
            raise RuntimeError("boom")
        return h


def test_no_hooks_left_after_an_exception(moons) -> None:
    model = Exploding()
    with pytest.raises(RuntimeError, match="boom"):
        unit_maps(model, moons[0], resolution=8, batch_size=10)
    for m in model.modules():
        assert not m._forward_hooks
    with pytest.raises(ValueError, match="not found"):
        unit_maps(net(), moons[0], layers="fc9")


# ---------------------------------------------------------------- grid_warp


def test_grid_warp_through_linear_2_unit_layers(moons) -> None:
    X, _ = moons
    model = net((2, 2, 2, 2), act=nn.Tanh)
    before = snapshot(model)
    gw = grid_warp(model, X, n_lines=5, points_per_line=7)
    assert_untouched(model, before)
    assert isinstance(gw, GridWarp)
    assert gw.layers == ["0", "1", "2", "3", "4"]
    assert gw.grid_lines.shape == (10, 7, 2)
    W, b = model[0].weight.detach().numpy(), model[0].bias.detach().numpy()
    np.testing.assert_allclose(gw.lines["0"], gw.grid_lines @ W.T + b, atol=1e-5)
    np.testing.assert_allclose(gw.lines["1"], np.tanh(gw.grid_lines @ W.T + b), atol=1e-5)
    np.testing.assert_allclose(gw.points["1"], np.tanh(X @ W.T + b), atol=1e-5)
    # first half of the lines run along u (constant v), the second half along v
    assert np.ptp(gw.grid_lines[0, :, 1]) == 0 and np.ptp(gw.grid_lines[5, :, 0]) == 0


def test_grid_warp_picks_only_2_unit_layers_and_complains(moons) -> None:
    X, _ = moons
    gw = grid_warp(net((2, 3, 2)), X, n_lines=3, points_per_line=4)
    assert gw.layers == ["2"]  # the 3-unit hidden layer is skipped
    with pytest.raises(ValueError, match="3 units"):
        grid_warp(net((2, 3, 2)), X, layers="0")
    with pytest.raises(ValueError, match="2 units"):
        grid_warp(net((2, 3, 4)), X)


# ---------------------------------------------------------------- evolution


def test_boundary_evolution_loads_copies_and_aligns(moons) -> None:
    X, y = moons
    model = net((2, 8, 2))
    ckpts = {}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    for epoch in range(31):
        if epoch in (0, 10, 30):
            ckpts[epoch] = copy.deepcopy(model.state_dict())
        opt.zero_grad()
        nn.functional.cross_entropy(model(Xt), yt).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    model[0].weight.data.fill_(7.0)  # the user's model differs from every checkpoint
    before = snapshot(model)
    ev = boundary_evolution(model, ckpts, X, y, resolution=15, hidden_layer="1")
    assert_untouched(model, before)
    assert isinstance(ev, BoundaryEvolution)
    np.testing.assert_array_equal(ev.epochs, [0, 10, 30])
    assert ev.probs.shape == (3, 15, 15, 2) and ev.hidden.shape == (3, 120, 2)
    for i, epoch in enumerate(ev.epochs):
        fresh = net((2, 8, 2), seed=99)
        fresh.load_state_dict(ckpts[int(epoch)])
        g = decision_boundary(fresh, X, resolution=15)
        np.testing.assert_allclose(ev.frame(i).probs, g.probs, atol=1e-6)
        with torch.no_grad():
            logits = fresh(Xt)
            hidden = fresh[1](fresh[0](Xt)).numpy()
        assert ev.accuracy[i] == pytest.approx((logits.argmax(1).numpy() == y).mean())
        # aligned frames are rotations of the layer's PCA: same pairwise distances
        pca = PCA(2).fit_transform(hidden.astype(np.float64))
        d_ev = np.linalg.norm(ev.hidden[i][:, None] - ev.hidden[i][None], axis=-1)
        d_pca = np.linalg.norm(pca[:, None] - pca[None], axis=-1)
        np.testing.assert_allclose(d_ev, d_pca, atol=1e-4)
    # a factory works the same way
    ev2 = boundary_evolution(lambda: net((2, 8, 2), seed=5), ckpts, X, resolution=15)
    np.testing.assert_allclose(ev2.probs, ev.probs, atol=1e-6)
    assert ev2.accuracy is None and ev2.hidden is None
    with pytest.raises(ValueError, match="empty"):
        boundary_evolution(model, {}, X)


# ---------------------------------------------------------------- trustworthy at the edges


def _with_nan(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        model[0].weight[1, 0] = float("nan")
    return model


def _each_call(model, X, **kw):
    """Every plane function on ``model``: (name, thunk)."""
    return [
        ("decision_boundary", lambda: decision_boundary(model, X, resolution=8, **kw)),
        ("unit_maps", lambda: unit_maps(model, X, resolution=8, **kw)),
        ("boundary_evolution",
         lambda: boundary_evolution(model, {0: model.state_dict()}, X, resolution=8, **kw)),
    ]


@pytest.mark.parametrize("X", [np.zeros((20, 5)), np.zeros((20, 1)), np.zeros((20, 3, 2))])
def test_inputs_the_model_cannot_take_say_what_it_takes(X) -> None:
    model = net((4, 6, 3)).eval()
    shape = str(X.shape).replace("(", r"\(").replace(")", r"\)")
    for name, call in _each_call(model, X.astype(np.float32)):
        with pytest.raises(ValueError, match=rf"cannot take inputs of shape {shape}; it expects "
                           r"\(batch, 4\) \(its first layer '0' is Linear"):
            call()
        assert not any(m._forward_hooks for m in model.modules()), name
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \(20, 3\); it expects "
                       r"\(batch, 2\)"):
        grid_warp(net((2, 2, 2)), np.zeros((20, 3), dtype=np.float32))


def _small_memory(monkeypatch, nbytes: int) -> None:
    import netxray.boundary._plane as plane

    monkeypatch.setattr(plane, "memory_bytes", lambda device="cpu": nbytes)


def test_decision_boundary_refuses_a_grid_that_cannot_fit_before_allocating(monkeypatch, moons):
    X, _ = moons
    model = net((2, 6, 3))
    with pytest.raises(ValueError, match=r"decision_boundary\(resolution=100000\) would need "
                       r"\d+(\.\d+)? GiB to hold the 100000 x 100000 grid and its probabilities "
                       r"of 3 classes: more than a quarter of the .* this machine has\. Pass "
                       r"resolution <= \d+"):
        decision_boundary(model, X, resolution=100000)
    # the limit, exactly: 32 bytes of coordinates + 4 per class for each of res^2 points
    per_point = 32 + 4 * 3
    _small_memory(monkeypatch, 4 * per_point * 100 * 100)  # a quarter holds resolution 100
    assert decision_boundary(model, X, resolution=100).probs.shape == (100, 100, 3)
    with pytest.raises(ValueError, match=r"Pass resolution <= 100$"):
        decision_boundary(model, X, resolution=101)
    two = {0: model.state_dict(), 1: model.state_dict()}  # 88^2 * (32 + 2 * 12) <= 440000
    with pytest.raises(ValueError, match=r"2 frames of its .* Pass resolution <= 88 or fewer "):
        boundary_evolution(model, two, X, resolution=100)
    states = {e: model.state_dict() for e in range(3)}
    _small_memory(monkeypatch, 4 * (32 + 4 * 3 * 3) * 50 * 50)
    assert boundary_evolution(model, states, X, resolution=50).probs.shape == (3, 50, 50, 3)
    with pytest.raises(ValueError, match=r"3 frames of its probabilities.*resolution <= 50 "):
        boundary_evolution(model, states, X, resolution=51)


def test_unit_maps_and_grid_warp_refuse_what_cannot_fit(monkeypatch, moons):
    X, _ = moons
    model = net((2, 6, 5, 3))  # default layers: two ReLUs, 6 + 5 units
    _small_memory(monkeypatch, 4 * (32 + 4 * 11) * 40 * 40)
    assert unit_maps(model, X, resolution=40).maps["3"].shape == (5, 40, 40)
    with pytest.raises(ValueError, match=r"unit_maps\(resolution=41\) would need .* the 41 x 41 "
                       r"grid and float32 maps of 11 units.*Pass resolution <= 40, or fewer"):
        unit_maps(model, X, resolution=41)
    assert unit_maps(model, X, layers="1", resolution=45).maps["1"].shape == (6, 45, 45)
    model = net((2, 2, 2, 2), act=nn.Tanh)  # draws 0, 1, 2, 3, 4: 5 layers
    points = 2 * 10 * 50
    _small_memory(monkeypatch, 4 * (16 + 16 * 5) * points)
    assert grid_warp(model, X, n_lines=10, points_per_line=50).lines["4"].shape == (20, 50, 2)
    with pytest.raises(ValueError, match=r"grid_warp\(n_lines=10, points_per_line=51\) would "
                       r"need .* 1020 grid points and their images under 5 layer\(s\).*Pass 2 "
                       r"\* n_lines \* points_per_line <= 1000"):
        grid_warp(model, X, n_lines=10, points_per_line=51)


def test_grid_warp_does_not_build_a_square_grid_and_runs_in_chunks(monkeypatch, moons):
    X, _ = moons
    import tracemalloc

    model = CountingNet(net((2, 2, 2), act=nn.Tanh))
    tracemalloc.start()  # numpy reports its allocations to tracemalloc
    try:
        gw = grid_warp(model, X, layers=["inner.0", "inner.1"], n_lines=3,
                       points_per_line=4000, batch_size=1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # a 4000 x 4000 meshgrid for two axes would take 256 MB
    assert model.sizes[:2] == [8, 2]  # the input probe, the width probe
    assert model.sizes[2:] == [1000] * 24 + [len(X)]
    w, b = (t.detach().numpy() for t in model.inner[0].parameters())
    np.testing.assert_allclose(gw.lines["inner.0"], gw.grid_lines @ w.T + b, atol=1e-5)
    np.testing.assert_allclose(gw.lines["inner.1"], np.tanh(gw.grid_lines @ w.T + b), atol=1e-5)


def test_chunks_shrink_to_fit_the_devices_memory(monkeypatch, moons):
    X, _ = moons
    model = CountingNet(net((2, 6, 3)))
    whole = decision_boundary(model, X, resolution=20)
    import netxray.boundary._plane as plane

    # one chunk's inputs may take 404 bytes: 50 points of 2 float32 features
    monkeypatch.setattr(plane, "CHUNK_FRACTION", 2 * 4 * 50.5 / plane.memory_bytes("cpu"))
    model.sizes.clear()
    chunked = decision_boundary(model, X, resolution=20)
    assert model.sizes[1:] == [50] * 8
    np.testing.assert_array_equal(chunked.probs, whole.probs)


def test_a_nan_weight_warns_naming_the_parameter(moons) -> None:
    from netxray._warnings import NetxrayWarning

    X, _ = moons
    model = _with_nan(net((2, 6, 3)))
    for name, call in _each_call(model, X):
        with pytest.warns(NetxrayWarning, match=rf"{name}: .* NaN/Inf because the model's "
                          r"parameter\(s\) 0\.weight hold NaN/Inf; fix or reload those weights"):
            call()
    with pytest.warns(NetxrayWarning, match=r"grid_warp: the warped grid contains NaN/Inf because "
                      r"the model's parameter\(s\) 0\.weight hold"):
        grid_warp(_with_nan(net((2, 2, 2))), X, n_lines=3, points_per_line=4)
    good = net((2, 6, 3)).state_dict()
    with pytest.warns(NetxrayWarning, match=r"decision surface at epoch 5 \(the first such frame\)"):
        boundary_evolution(net((2, 6, 3)), {0: good, 5: model.state_dict(), 9: model.state_dict()},
                           X, resolution=8)
    decision_boundary(net((2, 6, 3)), X, resolution=8)  # finite: no warning (warnings are errors)
