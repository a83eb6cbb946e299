import json
import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import netxray
from netxray.stats import (
    LayerStats,
    NetworkStats,
    UnitStats,
    _batch,
    _compute,
    _merge,
    activation_family,
    collect_stats,
    saturation_band,
)
from netxray.stats._fused import fused_applies


@pytest.fixture(autouse=True, params=["fused", "host", "sync-free"])
def kernels(request, monkeypatch):
    """Every test here runs three times: the CPU's compiled loops, PyTorch's kernels on the
    CPU, and the ones an accelerator takes (never waiting for the device: the masked path
    always, histc histograms)."""
    fused = request.param == "fused"  # (whatever a UnitStats asks for)
    monkeypatch.setattr("netxray.stats._kernels._fused_applies",
                        lambda x, compiled: fused and fused_applies(x))
    if request.param == "sync-free":
        monkeypatch.setattr("netxray.stats._kernels._sync_free", lambda device: True)
    return request.param


def ref_hist(x: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    """Per-unit counts: below lo, np.histogram's bins (last one half-open here), >= hi."""
    out = []
    edges = np.linspace(lo, hi, bins + 1)
    for col in x.T:
        col = col[np.isfinite(col)]
        inner = col[(col >= lo) & (col < hi)]
        h, _ = np.histogram(inner, bins=edges)
        out.append(np.concatenate([[np.sum(col < lo)], h, [np.sum(col >= hi)]]))
    return np.array(out)


def mlp64() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)
    ).double()


# ------------------------------------------------------------------ collect_stats vs numpy


def test_collect_stats_matches_numpy_on_the_whole_data():
    model = mlp64()
    X = torch.randn(700, 5, dtype=torch.float64) * 2
    stats = collect_stats(model, X, batch_size=128, bins=32)
    assert list(stats) == ["1", "3"] and stats.n_samples == 700
    with torch.no_grad():
        a1 = model[1](model[0](X)).numpy()
        a3 = model[3](model[2](torch.from_numpy(a1))).numpy()
    for name, a in (("1", a1), ("3", a3)):
        s = stats[name]
        np.testing.assert_allclose(s.mean, a.mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s.var, a.var(0), rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(s.min, a.min(0))
        np.testing.assert_array_equal(s.max, a.max(0))
        np.testing.assert_array_equal(s.count, np.full(a.shape[1], 700))
        np.testing.assert_allclose(s.frac_active, (a > 0).mean(0), rtol=0, atol=1e-12)
        assert s.nan_count.sum() == 0 and s.inf_count.sum() == 0
    assert stats["1"].family == "relu" and stats["3"].family == "tanh"
    np.testing.assert_allclose(stats["3"].frac_saturated, (np.abs(a3) > 0.99).mean(0), atol=1e-12)
    lo, hi = stats["1"].hist_edges[0], stats["1"].hist_edges[-1]
    np.testing.assert_array_equal(stats["1"].hist, ref_hist(a1, lo, hi, 32))


def test_float32_model_close_to_float64_reference():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU())
    X = torch.randn(5000, 10) + 3.0
    s = collect_stats(model, X, batch_size=1000)["1"]
    with torch.no_grad():
        a = model(X).double().numpy()
    np.testing.assert_allclose(s.mean, a.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s.var, a.var(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(s.frac_active, (a > 0).mean(0))


def test_float32_large_mean_small_spread_keeps_the_variance():
    x = (1000.0 + 0.01 * torch.randn(20000, 3, generator=torch.Generator().manual_seed(0)))
    u = UnitStats()
    for chunk in x.split(4096):
        u.update(chunk)
    ref = x.double().numpy()
    np.testing.assert_allclose(u.compute()["var"], ref.var(0), rtol=1e-3)


def test_conv_statistics_are_per_channel_over_batch_and_positions():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    X = torch.randn(50, 1, 8, 8)
    stats = collect_stats(model, X, batch_size=16)
    s = stats["1"]
    with torch.no_grad():
        a = model[1](model[0](X)).double().numpy()
    per_channel = a.transpose(1, 0, 2, 3).reshape(4, -1)
    assert s.units == 4 and s.shape == (4, 6, 6)
    np.testing.assert_array_equal(s.count, np.full(4, 50 * 36))
    np.testing.assert_allclose(s.mean, per_channel.mean(1), rtol=1e-5)
    np.testing.assert_allclose(s.var, per_channel.var(1), rtol=1e-4)
    np.testing.assert_array_equal(s.frac_active, (per_channel > 0).mean(1))


def test_tokens_use_the_last_dimension_after_a_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.GELU())
    X = torch.randn(20, 7, 6)
    s = collect_stats(model, X)["1"]
    with torch.no_grad():
        a = model(X).reshape(-1, 5).double().numpy()
    assert s.units == 5 and s.family == "rectifier"
    np.testing.assert_allclose(s.mean, a.mean(0), rtol=1e-5)


def test_accepts_pairs_loaders_and_generators():
    model = mlp64()
    X = torch.randn(100, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (100,))
    a = collect_stats(model, X)
    b = collect_stats(model, (X, y), loss_fn=nn.functional.cross_entropy)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=7)
    c = collect_stats(model, loader)
    d = collect_stats(model, (X[i : i + 9] for i in range(0, 100, 9)))
    for s in (b, c, d):
        np.testing.assert_allclose(s["1"].mean, a["1"].mean, rtol=1e-12)
    with torch.no_grad():
        ref = nn.functional.cross_entropy(model(X), y).item()
    assert b.loss == pytest.approx(ref, rel=1e-12)
    assert a.loss is None and a.output_shape == (3,)


# ------------------------------------------------------------------ merge properties


def _chunks(draw_sizes: list[int], n: int) -> list[slice]:
    out, start = [], 0
    for size in draw_sizes:
        if start >= n:
            break
        out.append(slice(start, min(n, start + size)))
        start += size
    if start < n:
        out.append(slice(start, n))
    return out


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60),
    sizes=st.lists(st.integers(1, 25), min_size=1, max_size=8),
    seed=st.integers(0, 2**16),
    shift=st.floats(-50, 50),
    order_seed=st.integers(0, 2**16),
)
def test_any_split_and_merge_order_gives_the_concatenated_statistics(n, sizes, seed, shift, order_seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, rng.uniform(0.1, 3), size=(n, 4))
    x[rng.random((n, 4)) < 0.2] = 0.0  # exact zeros, as after a ReLU
    band, rng_h = (-0.99, 0.99), (-4.0, 4.0)
    parts = [
        UnitStats(saturation=band, hist_range=rng_h, bins=8).update(torch.from_numpy(x[s]))
        for s in _chunks(sizes, n)
    ]
    # merge in a random tree order
    order = np.random.default_rng(order_seed).permutation(len(parts)).tolist()
    pool = [parts[i] for i in order]
    while len(pool) > 1:
        i = int(np.random.default_rng(order_seed + len(pool)).integers(0, len(pool) - 1))
        a, b = pool.pop(i), pool.pop(i)
        pool.insert(i, a.merge(b))
    got = pool[0].compute()
    scale = max(float(np.abs(x).max()), 1.0)
    np.testing.assert_allclose(got["mean"], x.mean(0), rtol=1e-6, atol=1e-9 * scale)
    np.testing.assert_allclose(got["var"], x.var(0), rtol=1e-6, atol=1e-9 * scale**2)
    np.testing.assert_array_equal(got["min"], x.min(0))
    np.testing.assert_array_equal(got["max"], x.max(0))
    np.testing.assert_array_equal(got["count"], np.full(4, n))
    np.testing.assert_array_equal(got["frac_active"], (x > 0).mean(0))
    np.testing.assert_array_equal(got["frac_saturated"], (np.abs(x) > 0.99).mean(0))
    np.testing.assert_array_equal(got["hist"], ref_hist(x, -4.0, 4.0, 8))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_merge_kernel_is_commutative_and_associative(seed):
    rng = np.random.default_rng(seed)
    args = (1, (0.1, 0.9), (0.0, 1.0), 4)
    a, b, c = (_batch(torch.from_numpy(rng.random((rng.integers(1, 20), 3))), *args) for _ in range(3))
    ab_c = _compute(_merge(_merge(a, b), c))
    a_bc = _compute(_merge(a, _merge(b, c)))
    cb_a = _compute(_merge(_merge(c, b), a))
    for k in ab_c:
        np.testing.assert_allclose(ab_c[k], a_bc[k], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(ab_c[k], cb_a[k], rtol=1e-12, atol=1e-15)


def test_merging_an_empty_state_changes_nothing():
    x = torch.randn(30, 2, dtype=torch.float64)
    u = UnitStats().update(x)
    before = u.compute()
    u.merge(UnitStats())
    after = UnitStats().merge(u).compute()
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_merge_refuses_different_settings():
    a = UnitStats(bins=8).update(torch.randn(4, 2))
    b = UnitStats(bins=16).update(torch.randn(4, 2))
    with pytest.raises(ValueError, match="same saturation, hist_range, bins and layer_hist"):
        a.merge(b)
    with pytest.raises(ValueError, match="units"):
        a.update(torch.randn(4, 3))


def test_reset_and_compute_without_data():
    u = UnitStats().update(torch.randn(3, 2))
    u.reset()
    with pytest.raises(RuntimeError, match="no data"):
        u.compute()


def test_sync_is_a_no_op_without_a_process_group():
    u = UnitStats().update(torch.ones(3, 2))
    before = u.compute()
    u.sync()
    np.testing.assert_array_equal(u.compute()["mean"], before["mean"])


# ------------------------------------------------------------------ NaN / Inf


def test_nan_and_inf_are_counted_and_kept_out_of_the_statistics():
    x = np.array(
        [[1.0, np.nan, 2.0], [np.inf, 3.0, -1.0], [5.0, -np.inf, np.nan], [2.0, 1.0, 0.5]],
        dtype=np.float32,
    )
    u = UnitStats(saturation=(-0.99, 0.99), hist_range=(-2.0, 2.0), bins=4)
    u.update(torch.from_numpy(x[:2])).update(torch.from_numpy(x[2:]))
    got = u.compute()
    finite = np.ma.masked_invalid(x.astype(np.float64))
    np.testing.assert_array_equal(got["nan_count"], [0, 1, 1])
    np.testing.assert_array_equal(got["inf_count"], [1, 1, 0])
    np.testing.assert_array_equal(got["count"], [3, 2, 3])
    np.testing.assert_allclose(got["mean"], finite.mean(0).data, rtol=1e-7)
    np.testing.assert_allclose(got["var"], finite.var(0).data, rtol=1e-6)
    np.testing.assert_array_equal(got["min"], finite.min(0).data)
    np.testing.assert_array_equal(got["max"], finite.max(0).data)
    np.testing.assert_allclose(got["frac_active"], [1.0, 1.0, 2 / 3])
    np.testing.assert_allclose(got["frac_saturated"], [1.0, 1.0, 2 / 3])
    np.testing.assert_array_equal(got["hist"], ref_hist(x.astype(np.float64), -2.0, 2.0, 4))


def test_a_unit_that_is_always_nan_has_no_statistics():
    u = UnitStats().update(torch.tensor([[np.nan, 1.0], [np.nan, 2.0]]))
    got = u.compute()
    assert got["count"][0] == 0 and math.isnan(got["mean"][0]) and got["frac_active"][0] == 0
    assert got["mean"][1] == 1.5


def test_nonfinite_layer_outputs_are_recorded_per_layer():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.Tanh())
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    stats = collect_stats(model, torch.ones(10, 2))
    assert stats["1"].n_nonfinite == 0
    np.testing.assert_array_equal(stats["3"].nan_count, [10, 0])


# ------------------------------------------------------------------ families & saturation


def test_activation_families_and_bands():
    assert activation_family(nn.ReLU()) == "relu"
    assert activation_family(nn.LeakyReLU()) == "rectifier"
    assert activation_family(nn.Linear(1, 1)) == "linear"
    assert saturation_band("tanh", tanh_threshold=0.9) == (-0.9, 0.9)
    assert saturation_band("sigmoid", sigmoid_threshold=0.05) == (0.05, 0.95)
    assert saturation_band("relu") is None


def test_sigmoid_saturation_threshold_is_a_parameter():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.mul_(5)
    X = torch.randn(400, 3)
    with torch.no_grad():
        a = model(X).double().numpy()
    for t in (0.01, 0.1):
        s = collect_stats(model, X, sigmoid_threshold=t)["1"]
        np.testing.assert_allclose(s.frac_saturated, ((a < t) | (a > 1 - t)).mean(0), atol=1e-12)


# ------------------------------------------------------------------ gradients


def test_gradient_statistics_match_autograd_on_the_whole_data():
    model = mlp64()
    X = torch.randn(90, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (90,))
    stats = collect_stats(model, (X, y), gradients=True, batch_size=32)
    # reference: full-data mean loss; per-sample losses for per-sample gradients
    a1 = model[1](model[0](X))
    a3 = model[3](model[2](a1))
    out = model[4](a3)
    per_sample = nn.functional.cross_entropy(out, y, reduction="none")
    g1, g3 = torch.autograd.grad(per_sample.sum(), [a1, a3], retain_graph=True)
    params = dict(model.named_parameters())
    gw = torch.autograd.grad(per_sample.mean(), list(params.values()))
    for name, g in (("1", g1), ("3", g3)):
        s = stats[name]
        np.testing.assert_allclose(s.grad_abs_mean, g.abs().mean(0).numpy(), rtol=1e-10)
        ref = math.sqrt(float(g.square().sum(1).mean()))
        assert s.grad_norm == pytest.approx(ref, rel=1e-10)
        assert s.grad_rms == pytest.approx(ref / math.sqrt(s.units), rel=1e-10)
    for (pname, p), g in zip(params.items(), gw, strict=True):
        assert stats.params[pname].grad_norm == pytest.approx(float(g.norm()), rel=1e-9)
        assert stats.params[pname].weight_norm == pytest.approx(float(p.detach().norm()), rel=1e-12)
    assert stats.loss == pytest.approx(per_sample.mean().item(), rel=1e-12)


def test_the_model_is_left_exactly_as_it_was(hook_count):
    model = mlp64()
    model.train()
    model[0].weight.requires_grad_(False)
    sentinel = torch.full_like(model[2].weight, 7.0)
    model[2].weight.grad = sentinel.clone()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    X = torch.randn(50, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (50,))
    collect_stats(model, (X, y), gradients=True, batch_size=20)
    assert hook_count(model) == 0
    assert model.training
    assert not model[0].weight.requires_grad and model[2].weight.requires_grad
    assert model[0].weight.grad is None
    assert torch.equal(model[2].weight.grad, sentinel)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_hooks_are_removed_after_an_exception(hook_count):
    model = mlp64()

    def bad_loss(out, y):
        raise RuntimeError("boom")

    X = torch.randn(10, 5, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="boom"):
        collect_stats(model, (X, torch.zeros(10, dtype=torch.long)), gradients=True, loss_fn=bad_loss)
    assert hook_count(model) == 0
    with pytest.raises(ValueError, match="needs targets"):
        collect_stats(model, X, gradients=True)
    assert hook_count(model) == 0
    assert all(p.requires_grad for p in model.parameters())


def test_unknown_layer_and_dropout_in_training_mode_fail_clearly():
    model = mlp64()
    with pytest.raises(ValueError, match="not found"):
        collect_stats(model, torch.randn(3, 5, dtype=torch.float64), layers="fc9")
    drop = nn.Sequential(nn.Linear(2, 2), nn.Dropout(), nn.ReLU()).train()
    with pytest.raises(ValueError, match="training mode"):
        collect_stats(drop, torch.randn(3, 2))


# ------------------------------------------------------------------ results


def test_results_serialize_to_json_and_npz(tmp_path):
    model = mlp64()
    stats = collect_stats(model, torch.randn(40, 5, dtype=torch.float64))
    assert isinstance(stats, NetworkStats) and isinstance(stats["1"], LayerStats)
    d = stats.to_dict()
    json.dumps(d)
    assert d["layers"]["1"]["family"] == "relu"
    path = stats["1"].save(tmp_path / "l.npz")
    back = LayerStats.load(path)
    np.testing.assert_array_equal(back.mean, stats["1"].mean)
    assert type(back.shape) is tuple and back.shape == stats["1"].shape
    assert back == stats["1"]
    with pytest.raises(KeyError, match="layers: 1, 3"):
        stats["nope"]


def test_scale_is_the_rms_activation():
    x = torch.tensor([[1.0, -2.0], [3.0, 2.0]], dtype=torch.float64)
    s = collect_stats(nn.Sequential(nn.Identity()), x, layers="0")["0"]
    assert s.scale == pytest.approx(math.sqrt((1 + 4 + 9 + 4) / 4), rel=1e-12)


def test_scale_of_huge_activations_is_right_without_an_overflow_warning():
    x = torch.tensor([[1.0, -2.0], [3.0, 2.0]], dtype=torch.float64)
    s = collect_stats(nn.Sequential(nn.Identity()), x, layers="0")["0"]
    huge = replace(s, mean=np.array([1e200, -1e200]), var=np.array([0.0, 0.0]))  # mean^2: inf
    many = replace(s, mean=np.array([1e300, 0.0]), var=np.array([1e308, 1e308]))
    over = replace(s, mean=np.array([np.inf, 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in square" would raise
        assert huge.scale == pytest.approx(1e200, rel=1e-12)
        assert many.scale == pytest.approx(math.sqrt(0.5) * 1e300, rel=1e-12)  # var negligible
        assert over.scale == math.inf  # a value that truly overflows stays inf


def test_exported_from_the_package():
    assert netxray.collect_stats is collect_stats
    assert {"collect_stats", "NetworkStats", "LayerStats", "UnitStats"} <= set(netxray.__all__)


def test_histograms_can_be_switched_off():
    model = mlp64()
    X = torch.randn(64, 5, dtype=torch.float64)
    a, b = collect_stats(model, X), collect_stats(model, X, bins=32)
    assert a["1"].hist.shape == (16, 0) and a["1"].hist_edges.shape == (0,)
    assert b["1"].hist.shape == (16, 34) and b["1"].hist.sum() == 64 * 16
    np.testing.assert_array_equal(a["1"].mean, b["1"].mean)
    u = UnitStats(bins=0).update(torch.randn(5, 2)).merge(UnitStats(bins=0).update(torch.randn(3, 2)))
    assert u.compute()["count"].tolist() == [8, 8]


def test_a_shared_module_called_twice_per_forward_is_two_layers():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3).double()
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.lin(self.act(self.lin(x))))

    m = Twice()
    X = torch.randn(40, 3, dtype=torch.float64)
    stats = collect_stats(m, X, batch_size=16)
    with torch.no_grad():
        a1 = m.act(m.lin(X))
        a2 = m.act(m.lin(a1))
    assert list(stats) == ["act", "act#1"]
    for name, ref in (("act", a1.numpy()), ("act#1", a2.numpy())):
        s = stats[name]
        assert s.calls == 1 and s.count.tolist() == [40, 40, 40] and s.module_type == "ReLU"
        np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-12)
        np.testing.assert_allclose(s.var, ref.var(0), rtol=1e-10, atol=1e-14)
    assert list(collect_stats(m, X, "act#1")) == ["act#1"]


# ------------------------------------------------------------------ channel fast path


def _per_channel(x: torch.Tensor) -> np.ndarray:
    """``(channels, batch * positions)`` float64 reference of a (batch, channels, ...) tensor."""
    a = x.double().numpy()
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)


@pytest.mark.parametrize("chunk", [1 << 20, 3 * 20])  # one chunk / many with a ragged last one
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_channel_path_matches_float64_numpy(monkeypatch, chunk, dtype):
    import netxray.stats._kernels as stats_mod

    monkeypatch.setattr(stats_mod, "_CHUNK_ELEMS", chunk)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(37, 5, 4, 5, generator=g, dtype=dtype) * 2 + torch.arange(5.0).view(1, 5, 1, 1)
    x[x.abs() < 0.3] = 0.0  # exact zeros: not active
    band, rng_h = (-0.99, 0.99), (-4.0, 4.0)
    got = UnitStats(saturation=band, hist_range=rng_h, bins=6).update(x).compute()
    a = _per_channel(x)
    tol = 1e-12 if dtype == torch.float64 else 1e-6
    np.testing.assert_allclose(got["mean"], a.mean(1), rtol=tol, atol=tol)
    np.testing.assert_allclose(got["var"], a.var(1), rtol=tol)
    np.testing.assert_array_equal(got["min"], a.min(1))
    np.testing.assert_array_equal(got["max"], a.max(1))
    np.testing.assert_array_equal(got["count"], np.full(5, 37 * 20))
    np.testing.assert_array_equal(got["frac_active"], (a > 0).mean(1))
    np.testing.assert_array_equal(got["frac_saturated"], (np.abs(a) > 0.99).mean(1))
    np.testing.assert_array_equal(got["hist"], ref_hist(a.T, -4.0, 4.0, 6))


def test_channel_path_keeps_the_variance_of_a_large_mean_with_a_small_spread():
    g = torch.Generator().manual_seed(0)
    x = 1e4 + 1e-2 * torch.randn(256, 3, 28, 28, generator=g)  # float32
    got = UnitStats().update(x).compute()
    a = _per_channel(x)
    np.testing.assert_allclose(got["mean"], a.mean(1), rtol=1e-9)
    np.testing.assert_allclose(got["var"], a.var(1), rtol=1e-5)


def test_channel_path_with_nan_and_inf_falls_back_to_masked_statistics():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 4, 4, generator=g)
    x[0, 1, 0, 0] = float("nan")
    x[2, 1, 3, 1] = float("inf")
    x[4, 2, 1, 2] = float("-inf")
    got = UnitStats().update(x).compute()
    a = np.ma.masked_invalid(_per_channel(x))
    np.testing.assert_array_equal(got["nan_count"], [0, 1, 0])
    np.testing.assert_array_equal(got["inf_count"], [0, 1, 1])
    np.testing.assert_array_equal(got["count"], [96, 94, 95])
    np.testing.assert_allclose(got["mean"], a.mean(1).data, rtol=1e-6)
    np.testing.assert_allclose(got["var"], a.var(1).data, rtol=1e-6)
    np.testing.assert_array_equal(got["min"], a.min(1).data)
    np.testing.assert_array_equal(got["max"], a.max(1).data)


# ------------------------------------------------------------------ batches as models take them


class KeywordModel(nn.Module):
    """Takes keyword inputs and returns a dict (as HF models return a ModelOutput)."""

    def __init__(self):
        super().__init__()
        self.net = mlp64()

    def forward(self, features, scale=None):
        out = self.net(features)
        return {"hidden": out * 0, "logits": out if scale is None else out * scale}


def test_dict_batches_are_keyword_arguments_and_gradients_work_with_them():
    model = KeywordModel()
    X = torch.randn(60, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (60,))
    ref = collect_stats(model.net, (X, y), ["1", "3"], gradients=True, batch_size=25)
    dicts = [{"features": X[i:i + 25], "labels": y[i:i + 25]} for i in range(0, 60, 25)]
    got = collect_stats(model, dicts, ["net.1", "net.3"], gradients=True)
    for a, b in (("1", "net.1"), ("3", "net.3")):
        np.testing.assert_allclose(got[b].mean, ref[a].mean, rtol=1e-12)
        assert got[b].grad_norm == pytest.approx(ref[a].grad_norm, rel=1e-10)
        np.testing.assert_allclose(got[b].grad_abs_mean, ref[a].grad_abs_mean, rtol=1e-10)
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)  # the loss used the logits
    renamed = [{"features": d["features"], "target": d["labels"]} for d in dicts]
    fmt = netxray.BatchFormat(labels="target", output="logits")
    for kw in ({"labels": "target", "output": "logits"}, {"batch_format": fmt}):
        s = collect_stats(model, renamed, ["net.1"], gradients=True, **kw)
        assert s["net.1"].grad_norm == pytest.approx(ref["1"].grad_norm, rel=1e-10)
    with pytest.raises(ValueError, match="takes no argument 'target'.*labels='target'"):
        collect_stats(model, renamed, ["net.1"])
    with pytest.raises(ValueError, match="either batch_format= or"):
        collect_stats(model, renamed, batch_format=fmt, labels="target")
    with pytest.raises(ValueError, match="has no 'probs'"):
        collect_stats(model, dicts, ["net.1"], gradients=True, output="probs")


def test_a_mask_leaves_padding_out_of_every_per_token_layer():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).double()
    lengths = [5, 2, 7, 1, 4, 3]
    real = [torch.randn(n, 4, dtype=torch.float64) for n in lengths]
    with torch.no_grad():
        ref = {name: torch.cat([model[:k](r) for r in real]).numpy()
               for name, k in (("0", 1), ("1", 2), ("2", 3))}
    runs = []
    for width, bs in ((7, 6), (9, 4), (12, 1)):
        X = torch.full((6, width, 4), 1e3, dtype=torch.float64)  # padding: huge values
        M = torch.zeros(6, width, dtype=torch.long)
        for i, r in enumerate(real):
            X[i, :len(r)], M[i, :len(r)] = r, 1
        data = [{"input": X[i:i + bs], "attention_mask": M[i:i + bs]} for i in range(0, 6, bs)]

        class Wrap(nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input, attention_mask):
                return self.inner(input)

        runs.append(collect_stats(Wrap(model), data, ["inner.0", "inner.1", "inner.2"]))
        # the same with the mask as a whole-dataset tensor and plain tensor batches
        runs.append(collect_stats(model, X, ["0", "1", "2"], mask=M, batch_size=bs))
    for stats in runs:
        for name in ("0", "1", "2"):
            s = stats[name] if name in stats else stats[f"inner.{name}"]
            r = ref[name]
            assert s.per_token and s.count.tolist() == [sum(lengths)] * r.shape[1]
            np.testing.assert_allclose(s.mean, r.mean(0), rtol=1e-12)
            np.testing.assert_allclose(s.var, r.var(0), rtol=1e-10)
            np.testing.assert_array_equal(s.max, r.max(0))
            np.testing.assert_array_equal(s.frac_active, (r > 0).mean(0))


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_nested_transformer_encoder_outputs_count_real_tokens_and_unmasked_padding_is_refused():
    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True)

        def forward(self, input_ids, attention_mask):
            return self.enc(self.emb(input_ids), src_key_padding_mask=attention_mask == 0)

    torch.manual_seed(0)
    model = Encoder().eval()
    seqs = [[5, 17, 23, 9, 41], [12, 7], [33, 8, 8, 19], [44], [6, 30, 2, 27, 11, 38]]

    def batches(width, bs):
        out = []
        for i in range(0, len(seqs), bs):
            ids = torch.zeros(len(seqs[i:i + bs]), width, dtype=torch.long)
            for j, s in enumerate(seqs[i:i + bs]):
                ids[j, :len(s)] = torch.tensor(s)
            out.append({"input_ids": ids, "attention_mask": (ids != 0).long()})
        return out

    with torch.no_grad():
        ref = torch.cat([model(torch.tensor([s]), torch.ones(1, len(s)))[0] for s in seqs])
    ref = ref.double().numpy()
    for data, kw in ((batches(6, 5), {}), (batches(9, 2), {}), (batches(9, 2), {"mask": None})):
        s = collect_stats(model, data, ["enc.layers.1"], **kw)["enc.layers.1"]
        assert s.per_token and s.count.tolist() == [18] * 16
        np.testing.assert_allclose(s.mean, ref.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(s.var, ref.var(0), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="layer 'emb' outputs padded sequences.*mask="):
        collect_stats(model, batches(9, 2), ["emb", "enc.layers.1"], mask=None)


# ------------------------------------------------------------------ layer histograms


def _layer_ref(x: torch.Tensor, lo: float, hi: float, bins: int) -> np.ndarray:
    """numpy reference of one histogram of every finite value: ``(1, bins + 2)``."""
    a = x.double().numpy().reshape(-1, 1)
    return ref_hist(a[np.isfinite(a[:, 0])], lo, hi, bins).reshape(1, -1)


@pytest.mark.parametrize("chunk", [1 << 20, 3 * 20, 7 * 20])  # ragged chunks, odd sizes
@pytest.mark.parametrize("shape", [(37, 5, 4, 5), (6, 3, 17), (40, 9)])
@pytest.mark.parametrize("rng_h", [(-4.0, 4.0), (0.0, 8.0)])
def test_layer_histogram_counts_every_value_once(monkeypatch, chunk, shape, rng_h):
    """The layer histogram (fused into the channel path's chunks, interleaved copies) equals
    numpy's histogram of all values, and the per-unit histograms summed. (0, 8) on ReLU
    values keeps every chunk inside the range: the path that skips floor and clamp."""
    import netxray.stats._kernels as stats_mod

    monkeypatch.setattr(stats_mod, "_CHUNK_ELEMS", chunk)
    g = torch.Generator().manual_seed(5)
    lo, hi = rng_h
    x = torch.randn(*shape, generator=g) * 3
    if lo == 0.0:
        x = x.relu().clamp(max=7.9)
        edges = torch.linspace(lo, hi, 9)[:-1]  # on every edge, all inside [lo, hi)
    else:
        edges = torch.linspace(lo, hi, 9)  # on every edge, and at hi (overflow)
    k = x.view(-1)[::7].numel()
    x.view(-1)[::7] = edges.repeat(k // len(edges) + 1)[:k]
    layer = UnitStats(hist_range=rng_h, bins=8, layer_hist=True).update(x).compute()
    units = UnitStats(hist_range=rng_h, bins=8).update(x).compute()
    assert layer["hist"].shape == (1, 10)
    np.testing.assert_array_equal(layer["hist"], _layer_ref(x, lo, hi, 8))
    np.testing.assert_array_equal(layer["hist"][0], units["hist"].sum(0))
    for k in ("mean", "var", "min", "max", "frac_active", "count"):
        np.testing.assert_array_equal(layer[k], units[k])


def test_layer_histogram_leaves_out_nan_and_inf_and_merges():
    x = torch.randn(8, 4, 5, 5)
    x[0, 1, 2, 3], x[3, 0, 0, 0] = float("nan"), float("inf")
    u = UnitStats(hist_range=(-2.0, 2.0), bins=4, layer_hist=True).update(x)
    y = torch.randn(3, 4, 5, 5)
    u.merge(UnitStats(hist_range=(-2.0, 2.0), bins=4, layer_hist=True).update(y))
    got = u.compute()
    np.testing.assert_array_equal(got["hist"], _layer_ref(torch.cat([x, y]), -2.0, 2.0, 4))
    assert got["hist"].sum() == x.numel() + y.numel() - 2
    with pytest.raises(ValueError, match="layer_hist"):
        u.merge(UnitStats(hist_range=(-2.0, 2.0), bins=4).update(y))
