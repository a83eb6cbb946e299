"""The compiled loops (netxray.stats._fused_loops) against NumPy in float64: per-unit
statistics of both layouts across block boundaries, NaN/Inf and overflowing squares, and
the parameter norms with and without the copy of the weights."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from netxray._watch_reduce import MISSING, fit_all, param_norms
from netxray.stats import _fused_loops as loops
from netxray.stats._fused import fused_applies, fused_batch
from netxray.stats._kernels import _compute


def reference(x: np.ndarray, band, lo: float, hi: float, bins: int, layer_hist: bool) -> dict:
    """Per-unit statistics of ``x`` (before, units, after) in float64; bins and the band
    test computed in ``x``'s dtype, as the loops and PyTorch's kernels do."""
    units = x.shape[1]
    cols = np.moveaxis(x, 1, 0).reshape(units, -1)
    finite = np.isfinite(cols)
    out = {k: [] for k in ("count", "mean", "var", "min", "max", "n_pos", "n_sat", "nan", "inf")}
    dt = x.dtype.type
    hists = []
    for col, ok in zip(cols, finite, strict=True):
        v = col[ok]
        out["count"].append(v.size)
        out["nan"].append(int(np.isnan(col).sum()))
        out["inf"].append(int(np.isinf(col).sum()))
        out["mean"].append(v.astype(np.float64).mean() if v.size else np.nan)
        out["var"].append(v.astype(np.float64).var() if v.size else np.nan)
        out["min"].append(v.min() if v.size else np.nan)
        out["max"].append(v.max() if v.size else np.nan)
        out["n_pos"].append(int((v > 0).sum()))
        if band is not None:
            c, h = dt((band[0] + band[1]) / 2), dt((band[1] - band[0]) / 2)
            out["n_sat"].append(int((np.abs(v - c) > h).sum()))
        q = np.floor((v - dt(lo)) * dt(bins / (hi - lo)))
        hists.append(np.bincount(np.clip(q, -1, bins).astype(np.int64) + 1, minlength=bins + 2))
    hist = np.sum(hists, 0, keepdims=True) if layer_hist else np.array(hists)
    return {**{k: np.array(v) for k, v in out.items()}, "hist": hist}


def check(x: np.ndarray, band=(-0.9, 0.9), lo=-4.0, hi=4.0, bins=8, layer_hist=False,
          unit_dim=1) -> None:
    t = torch.from_numpy(x)
    state = fused_batch(t, unit_dim, band, (lo, hi), bins, layer_hist)
    got = _compute(state)
    if x.ndim == 1:  # one value per sample: one unit
        x3 = x.reshape(-1, 1, 1)
    else:
        ud = unit_dim % x.ndim
        x3 = x.reshape(math.prod(x.shape[:ud]), x.shape[ud], -1)
    want = reference(x3, band, lo, hi, bins, layer_hist)
    rtol = 1e-5 if x.dtype == np.float32 else 1e-10
    finite = x[np.isfinite(x)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0  # (float32 rounds to it)
    np.testing.assert_array_equal(got["count"], want["count"])
    np.testing.assert_array_equal(got["nan_count"], want["nan"])
    np.testing.assert_array_equal(got["inf_count"], want["inf"])
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(got["var"], want["var"], rtol=rtol * 10, atol=rtol * scale**2)
    np.testing.assert_array_equal(got["min"], want["min"])
    np.testing.assert_array_equal(got["max"], want["max"])
    with np.errstate(invalid="ignore", divide="ignore"):
        count = want["count"].astype(np.float64)
        np.testing.assert_array_equal(got["frac_active"],
                                      np.where(count > 0, want["n_pos"] / count, 0))
        if band is not None:
            np.testing.assert_array_equal(got["frac_saturated"],
                                          np.where(count > 0, want["n_sat"] / count, 0))
    np.testing.assert_array_equal(got["hist"], want["hist"])


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 200),  # across the 64-row blocks
    units=st.integers(1, 40),
    after=st.sampled_from([1, 1, 3, 17]),
    dtype=st.sampled_from([np.float32, np.float64]),
    loc=st.floats(-20, 20),
    layer_hist=st.booleans(),
    banded=st.booleans(),
    bad=st.sampled_from(["none", "none", "nan", "inf", "both"]),
    seed=st.integers(0, 2**16),
)
def test_statistics_equal_numpy_in_both_layouts(rows, units, after, dtype, loc, layer_hist,
                                                banded, bad, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc, rng.uniform(0.1, 5), size=(rows, units, after)).astype(dtype)
    x[rng.random(x.shape) < 0.2] = 0.0  # exact zeros, as after a ReLU
    if bad != "none":  # a few NaN/Inf, possibly in the first row (the loops' shift)
        idx = rng.integers(0, x.size, size=max(1, x.size // 50))
        vals = {"nan": [np.nan], "inf": [np.inf, -np.inf], "both": [np.nan, np.inf, -np.inf]}[bad]
        x.reshape(-1)[idx] = rng.choice(vals, size=idx.size)
    shape = (rows, units) if after == 1 else (rows, units, after)
    check(x.reshape(shape), band=(-0.9, 0.9) if banded else None, layer_hist=layer_hist)


def test_features_last_and_channels_of_images():
    rng = np.random.default_rng(0)
    check(rng.normal(size=(5, 7, 6)).astype(np.float32), unit_dim=-1)  # (batch, tokens, features)
    check(rng.normal(size=(70, 3, 4, 5)).astype(np.float32), layer_hist=True)  # conv output
    check(rng.normal(size=(9,)).astype(np.float64))  # one value per sample: one unit


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_bin_index_stays_in_its_histogram_for_any_value(dtype):
    """NaN goes to bin 0 (its counts are discarded), infinities to the two outer bins: an
    index out of range would write outside the counts."""
    lo, scale, bins = dtype(-4.0), dtype(8 / 8.0), 8
    values = np.array([np.nan, np.inf, -np.inf, -1e30, 1e30, -4.0, -4.0001, 3.999, 4.0, 0.5],
                      dtype=dtype)
    got = [loops._bin(v, lo, scale, dtype(bins), dtype(-1)) for v in values]
    finite = np.floor((values[3:] - lo) * scale)
    want = [0, bins + 1, 0] + list(np.clip(finite, -1, bins).astype(int) + 1)
    assert got == want


def test_squares_beyond_float32_are_counted_again_in_float64():
    x = np.array([[3e19], [-3e19], [1e19], [-2e19]] * 40, dtype=np.float32)
    got = _compute(fused_batch(torch.from_numpy(x), 1, None, (-8.0, 8.0), 4, True))
    np.testing.assert_allclose(got["var"], x.astype(np.float64).var(0), rtol=1e-12)
    assert got["nan_count"][0] == 0 and got["inf_count"][0] == 0 and got["count"][0] == 160


@pytest.mark.parametrize("shape", [(300, 3), (100, 3, 49)])
def test_a_large_mean_with_a_small_spread_keeps_its_mean_and_variance(shape):
    rng = np.random.default_rng(1)
    x = (1e4 + rng.normal(0, 1e-2, size=shape)).astype(np.float32)
    got = _compute(fused_batch(torch.from_numpy(x), 1, None, (-8.0, 8.0), 4, True))
    x64 = np.moveaxis(x.astype(np.float64), 1, 0).reshape(3, -1)
    np.testing.assert_allclose(got["mean"], x64.mean(1), rtol=1e-12)  # float64 accumulators
    np.testing.assert_allclose(got["var"], x64.var(1), rtol=1e-3)


def test_only_a_unit_stats_that_asks_takes_the_compiled_loops(monkeypatch):
    """One-shot analyses keep PyTorch's kernels (no numba to load); a watch asks."""
    from netxray.stats import UnitStats

    calls = []
    real = fused_batch
    monkeypatch.setattr("netxray.stats._kernels.fused_batch",
                        lambda *a: calls.append(1) or real(*a))
    x = torch.randn(20, 5)
    plain = UnitStats(bins=8).update(x).compute()
    assert calls == []
    fast = UnitStats(bins=8, compiled=True).update(x).compute()
    assert calls == [1]
    np.testing.assert_array_equal(fast["hist"], plain["hist"])
    np.testing.assert_allclose(fast["var"], plain["var"], rtol=1e-5)


def test_which_tensors_the_loops_take():
    assert fused_applies(torch.zeros(2, 3))
    assert fused_applies(torch.zeros(2, 3, dtype=torch.float16))
    assert not fused_applies(torch.zeros(0, 3))  # empty: the PyTorch kernels say what it means
    assert not fused_applies(torch.zeros(2, 3, dtype=torch.int64))


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 5000), dtype=st.sampled_from([np.float32, np.float64]),
       keep=st.booleans(), seed=st.integers(0, 2**16))
def test_square_sums_equal_numpy(size, dtype, keep, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=size).astype(dtype)
    p = (w + rng.normal(0, 1e-2, size=size)).astype(dtype)
    p0 = p.copy()
    sw, sp, sd = loops.square_sums(w, p, keep)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    w64, p64 = w.astype(np.float64), p0.astype(np.float64)
    np.testing.assert_allclose([sw, sp, sd], [w64 @ w64, p64 @ p64, (w64 - p64) @ (w64 - p64)],
                               rtol=rtol)
    np.testing.assert_array_equal(p, w if keep else p0)
    np.testing.assert_allclose(loops.square_sum(w), w64 @ w64, rtol=rtol)


def _params(dtype, device="cpu"):
    torch.manual_seed(0)
    ws = {"a.weight": torch.randn(30, 50, dtype=dtype), "a.bias": torch.randn(30, dtype=dtype),
          "b.weight": torch.randn(4, 30, dtype=dtype)}
    grads = {"a.weight": torch.randn(30, 50, dtype=dtype), "a.bias": None,
             "b.weight": torch.randn(4, 30, dtype=dtype)}
    return [(n, w.to(device), None if grads[n] is None else grads[n].to(device))
            for n, w in ws.items()]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("keep", [False, True])
def test_param_norms_of_the_loops_equal_numpy_and_keep_the_weights(monkeypatch, dtype, keep):
    params = _params(dtype)
    prev = {n: w + 0.1 for n, w, _ in params if n != "a.bias"}  # a.bias: no previous weights
    prev["b.weight"] = torch.zeros(3, 3, dtype=dtype)  # another shape: no update either
    before = {n: p.clone() for n, p in prev.items()}
    got = param_norms(params, prev, keep=keep)
    rtol = 1e-6 if dtype == torch.float32 else 1e-12
    for i, (n, w, g) in enumerate(params):
        w64 = w.double().numpy()
        want = [np.linalg.norm(w64), MISSING if g is None else np.linalg.norm(g.double().numpy()),
                MISSING, MISSING]
        if n == "a.weight":
            p64 = before[n].double().numpy()
            want[2:] = [np.linalg.norm(w64 - p64), np.linalg.norm(p64)]
        np.testing.assert_allclose(got[i].numpy(), want, rtol=rtol)
    if keep:  # the fitting buffer now holds its weights; the others are left as they were
        torch.testing.assert_close(prev["a.weight"], params[0][1], rtol=0, atol=0)
    torch.testing.assert_close(prev["b.weight"], before["b.weight"], rtol=0, atol=0)


@pytest.mark.parametrize("keep", [False, True])
def test_param_norms_of_the_loops_equal_pytorchs(monkeypatch, keep):
    """The same norms from the compiled loops and from the ``_foreach_norm`` path that
    accelerators take (forced here on the CPU)."""
    params = _params(torch.float32)
    prev = {n: w - 0.05 for n, w, _ in params}
    fused = param_norms(params, {n: p.clone() for n, p in prev.items()}, keep=keep)
    monkeypatch.setattr("netxray._watch_reduce._fused", lambda tensors: False)
    kept = {n: p.clone() for n, p in prev.items()}
    plain = param_norms(params, kept, keep=keep)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=0, equal_nan=True)
    if keep:
        for n, w, _ in params:
            torch.testing.assert_close(kept[n], w, rtol=0, atol=0)
    assert fit_all(params, kept) and not fit_all(params[:2], kept)
    assert not fit_all(params, {**kept, "a.bias": torch.zeros(2)})


def test_the_loops_compile_where_numba_finds_no_cache_directory():
    """A read-only install: numba refuses ``cache=True`` at decoration; the loops are then
    compiled in each process instead of failing to import."""
    code = (
        "import numba, numpy as np\n"
        "real = numba.njit\n"
        "def njit(*a, cache=False, **k):\n"
        "    if cache:\n"
        "        raise RuntimeError('cannot cache function: no locator available')\n"
        "    return real(*a, **k)\n"
        "numba.njit = njit\n"
        "from netxray.stats import _fused_loops as loops\n"
        "print(loops.square_sum(np.arange(3.0)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) == 5.0
