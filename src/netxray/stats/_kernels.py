"""The pure kernels of per-unit statistics: ``_batch`` / ``_merge`` / ``_compute`` on tensors.

A *state* is a dict of per-unit tensors (count, mean, M2 by Chan's parallel formula, min,
max, counts above zero and outside the saturation band, NaN/Inf counts, and a fixed-edge
histogram); :func:`_batch` reduces one batch to a state, :func:`_merge` combines two states
(associative and commutative), :func:`_compute` turns a state into final NumPy arrays.

Asked to (``compiled``: a training watch, which pays their one-time cost back),
:func:`_batch` hands float CPU batches to :mod:`._fused`: compiled loops that read each
value once for every statistic. Otherwise, and on accelerators, the kernels below do. There
the hot path is :func:`_batch`: a handful of single-pass reductions per batch in the
activation's dtype on its device, merged into float64 accumulators once per batch by
:func:`_merge`. Measured on this project's 2-core CPU, one thread, 4096 x 512 float32:
``var_mean`` 12 ms but mean + centred square sum 0.8 ms; ``(a > 0).sum(0)`` 1.5-2.3 ms
(bool kernels are slow) but ``a.sign().clamp(min=0).sum(0)`` 0.6 ms; ``torch.histc`` 11 ms
but quantise + int32 ``bincount`` about 3 ms; ``isfinite().all()`` 4 ms, so finiteness is
read off the batch means instead (NaN and Inf propagate into them). One work buffer per
collection is reused by every pass (fresh activation-sized temporaries cost their page
faults each time). Channels of conv outputs take :func:`_channel_moments` instead: rows of
``(batch * channels, positions)`` reduced along the contiguous dimension in cache-sized
chunks, then merged per channel in float64; on (4096, 16, 28, 28) float32, 2 threads, about
50 ms against 180 ms for reductions over dims (0, 2, 3) with a reused buffer (250 ms with a
fresh one), and a more accurate variance (shifted by each row's mean).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from netxray.stats._fused import fused_applies, fused_batch

State = dict[str, torch.Tensor]


def _fused_applies(x: torch.Tensor, compiled: bool) -> bool:
    """Whether :func:`_batch` hands ``x`` to :func:`fused_batch` (a seam for the tests,
    which run both paths on the CPU whatever ``compiled`` asks)."""
    return compiled and fused_applies(x)


def _sync_free(device: torch.device) -> bool:
    """Whether reductions on ``device`` must never wait for it: on an accelerator a
    ``bool()`` of a tensor, ``bincount`` (it reads its maximum back) and boolean indexing
    (it reads its count back) stall the host until the device catches up. There the
    NaN-safe masked path runs always (exact for finite data too), and histograms count
    with ``histc`` (``index_add_`` into a few bins queues millions of atomic adds on the
    same counters: 34 ms a recorded step of a CIFAR-sized CNN on an H200, 9 with histc)."""
    return device.type != "cpu"


_KEYS = ("count", "mean", "m2", "min", "max", "n_pos", "n_sat", "nan", "inf", "hist")


def _empty(units: int, bins: int, device: torch.device | str = "cpu") -> State:
    """The state of no data: ``units`` units, a histogram of ``bins`` (+2 outlier) bins."""
    f64 = {"dtype": torch.float64, "device": device}
    i64 = {"dtype": torch.int64, "device": device}
    return {
        "count": torch.zeros(units, **i64),
        "mean": torch.zeros(units, **f64),
        "m2": torch.zeros(units, **f64),
        "min": torch.full((units,), math.inf, **f64),
        "max": torch.full((units,), -math.inf, **f64),
        "n_pos": torch.zeros(units, **i64),
        "n_sat": torch.zeros(units, **i64),
        "nan": torch.zeros(units, **i64),
        "inf": torch.zeros(units, **i64),
        "hist": torch.zeros(units, bins + 2 if bins else 0, **i64),
    }


def _as_units_last(x: torch.Tensor, unit_dim: int) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``x`` and the dims to reduce over so that only ``unit_dim`` survives."""
    if x.ndim == 1:
        x = x.unsqueeze(1)
        unit_dim = 1
    unit_dim = unit_dim % x.ndim
    if unit_dim == 0:
        raise ValueError("the unit dimension cannot be the batch dimension (0)")
    dims = tuple(d for d in range(x.ndim) if d != unit_dim)
    return x, dims


class Scratch:
    """Reusable work buffers for :func:`_batch`, shared by every layer of one collection.

    A fresh activation-sized tensor per pass costs its page faults on first touch (about as
    much as the pass itself); reusing one buffer per dtype costs one activation's memory.
    """

    def __init__(self) -> None:
        self._bufs: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}

    def get(self, shape: torch.Size, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        n = math.prod(shape)
        buf = self._bufs.get((dtype, device))
        if buf is None or buf.numel() < n:
            buf = torch.empty(n, dtype=dtype, device=device)
            self._bufs[(dtype, device)] = buf
        return buf[:n].view(shape)


#: Elements per chunk of the channel fast path: a 4 MiB float32 work buffer that stays in
#: cache while each chunk is read several times (measured best of 2**16..2**22 on this CPU).
_CHUNK_ELEMS = 1 << 20


def _channel_moments(
    x: torch.Tensor,
    band: tuple[float, float] | None,
    hist: tuple[float, float, int] | None = None,
    scratch: Scratch | None = None,
) -> tuple[torch.Tensor, ...] | None:
    """Per-channel statistics of a contiguous ``(batch, channels, *spatial)`` tensor, or
    None when a value is not finite (the caller then takes the masked path). ``hist``:
    ``(lo, hi, bins)`` to also count the layer histogram ``(1, bins + 2)`` in the same
    chunks, while they are in cache (last element of the result; None without ``hist``).

    Viewed as rows ``(batch * channels, positions)``, every reduction runs along the
    contiguous last dimension (~3x faster than reducing over dims (0, 2, 3)), chunk by chunk
    so that the rows stay in cache across the passes and the work buffer is small. Per row:
    shift ``K`` = the row's float32 mean, ``d = x - K`` (exact for values near K), sum of
    ``d`` and ``||d||^2``, min, max, count > 0 (and outside the band); rows are then merged
    per channel in float64 (Chan), so a large mean with a small spread keeps its variance.
    """
    n, c = x.shape[0], x.shape[1]
    length = x.numel() // (n * c)
    rows = x.view(n * c, length)
    total = n * c
    new = {"dtype": x.dtype, "device": x.device}
    shift, dsum, dnorm, mn, mx, npos = (torch.empty(total, **new) for _ in range(6))
    nsat = torch.empty(total, **new) if band is not None else None
    step = max(1, _CHUNK_ELEMS // length)
    scratch = scratch or Scratch()
    work = scratch.get(torch.Size([min(step, total), length]), x.dtype, x.device)
    counts = _LayerHist(hist, min(step, total) * length, x.device, scratch) if hist else None
    centre, half = 0.0, 0.0
    if band is not None:
        centre, half = (band[0] + band[1]) / 2, (band[1] - band[0]) / 2
    for i in range(0, total, step):
        j = min(total, i + step)
        r, w, k = rows[i:j], work[: j - i], shift[i:j]
        torch.sum(r, 1, out=k)
        k.div_(length)
        torch.sub(r, k.unsqueeze(1), out=w)
        torch.sum(w, 1, out=dsum[i:j])
        torch.linalg.vector_norm(w, dim=1, out=dnorm[i:j])
        torch.amin(r, 1, out=mn[i:j])
        torch.amax(r, 1, out=mx[i:j])
        # a float comparison written into the float buffer: bool kernels are slow
        torch.sum(torch.gt(r, 0, out=w), 1, out=npos[i:j])
        if nsat is not None:
            torch.sum(torch.sub(r, centre, out=w).abs_().gt_(half), 1, out=nsat[i:j])
        if counts is not None:
            counts.add(r, w, (mn[i:j], mx[i:j]))
    f64 = torch.float64
    d64 = dsum.to(f64)
    m_row = (shift.to(f64) + d64 / length).view(n, c)
    m2_row = (dnorm.to(f64).square_() - d64.square_() / length).view(n, c)
    mean = m_row.mean(0)
    m2 = m2_row.sum(0) + length * (m_row - mean).square_().sum(0)
    if not bool(torch.isfinite(m2).all()):  # NaN/Inf in x, or squares overflowed
        return None
    n_sat = (
        torch.zeros(c, dtype=f64, device=x.device)
        if nsat is None
        else nsat.view(n, c).sum(0, dtype=f64)
    )
    return (
        torch.full((c,), n * length, dtype=torch.int64, device=x.device),
        mean,
        m2,
        mn.view(n, c).amin(0),
        mx.view(n, c).amax(0),
        npos.view(n, c).sum(0, dtype=f64),
        n_sat,
        None if counts is None else counts.result(),
    )


#: Copies of the histogram interleaved element by element: consecutive values land in
#: different counters, so ``bincount``'s increments do not wait on each other (a ReLU
#: output puts half its values in one bin; measured 4.9 -> 2.6 ms on 3.2M values).
_COPIES = 16


class _LayerHist:
    """One histogram ``(1, bins + 2)`` of every value, accumulated chunk by chunk.

    Same bins as :func:`_hist`: ``floor((v - lo) * bins / (hi - lo))`` clamped to
    ``[-1, bins]``, shifted by one, so the first bin is the underflow and the last the
    overflow. Each chunk is quantised in a float work buffer, converted to int32 and
    counted into ``_COPIES`` interleaved copies of the bins, summed at the end. A chunk
    with NaN is skipped: :func:`_channel_moments` then returns None and the masked path
    counts the histogram again.
    """

    def __init__(self, spec: tuple[float, float, int], elems: int, device: torch.device,
                 scratch: Scratch | None = None) -> None:
        self.lo, self.hi, self.bins = spec
        self.scale = self.bins / (self.hi - self.lo)
        width = self.bins + 2
        self.pattern = torch.arange(_COPIES, device=device, dtype=torch.float32).mul_(width).add_(1)
        self.idx = (scratch or Scratch()).get(torch.Size([elems]), torch.int32, device)
        self.counts = torch.zeros(_COPIES * width, dtype=torch.int64, device=device)

    def add(self, values: torch.Tensor, work: torch.Tensor,
            bounds: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """Count ``values`` (any shape), using ``work`` (same shape, float) as scratch.
        ``bounds``: tensors holding (among others) the smallest and largest value; on the
        CPU, when every value lies in ``[lo, hi)`` the floor and the clamp are skipped
        (``(v - lo) * scale >= 0`` truncates to its floor, and stays <= bins)."""
        inside = False
        if bounds is not None and values.device.type == "cpu":
            inside = self.lo <= float(bounds[0].min()) and float(bounds[1].max()) < self.hi
        if inside and self.lo == 0.0:
            q = torch.mul(values, self.scale, out=work)
        else:
            q = torch.sub(values, self.lo, out=work).mul_(self.scale)
        if not inside:
            q = q.floor_().clamp_(-1, self.bins)
        flat = q.view(-1)
        m = flat.numel() // _COPIES * _COPIES
        flat[:m].view(-1, _COPIES).add_(self.pattern.to(flat.dtype))
        flat[m:].add_(1)
        idx = self.idx[: flat.numel()]
        idx.copy_(flat)  # truncation: exact, every value is >= 0 here
        try:
            self.counts += torch.bincount(idx, minlength=self.counts.numel())
        except RuntimeError:  # a NaN made a negative index: the caller's moments see it too
            if bool(torch.isfinite(values).all()):
                raise

    def result(self) -> torch.Tensor:
        return self.counts.view(_COPIES, self.bins + 2).sum(0, keepdim=True)


def _batch(
    x: torch.Tensor,
    unit_dim: int,
    band: tuple[float, float] | None,
    hist_range: tuple[float, float],
    bins: int,
    scratch: Scratch | None = None,
    layer_hist: bool = False,
    compiled: bool = False,
) -> State:
    """Sufficient statistics of one batch ``x`` (batch, ..., units at ``unit_dim``, ...).
    ``layer_hist``: one histogram ``(1, bins + 2)`` of the whole layer instead of one per
    unit (cheaper: no unit offsets, and fused into the channel path's chunks).
    ``compiled``: a float CPU batch goes through :func:`fused_batch` (one compiled pass)."""
    if _fused_applies(x, compiled):
        return fused_batch(x, unit_dim, band, hist_range, bins, layer_hist)
    x, dims = _as_units_last(x.detach(), unit_dim)
    units = x.shape[unit_dim % x.ndim]
    n = x.numel() // max(units, 1)
    if not x.is_floating_point() or x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # half-precision sums and bin indices would be inexact
    # float32 sums are exact for counts below 2**24; beyond that count in float64
    acc = x.dtype if n < 2**24 or x.dtype == torch.float64 else torch.float64
    shape = [1] * x.ndim
    shape[unit_dim % x.ndim] = units
    hist_shape = [1] * x.ndim if layer_hist else shape

    length = n // max(x.shape[0], 1)  # positions per sample and unit
    sync_free = _sync_free(x.device)
    if (unit_dim % x.ndim == 1 and x.ndim >= 3 and x.is_contiguous() and 16 <= length < 2**24
            and not sync_free):
        # (host only: elsewhere each bincount would read its maximum back, once per chunk)
        fused = (*hist_range, bins) if layer_hist and bins else None
        fast = _channel_moments(x, band, fused, scratch)  # conv-like outputs: the hot path
        if fast is not None:
            count, mean_b, m2_b, mn, mx, n_pos, n_sat, hist = fast
            zero = torch.zeros(units, dtype=torch.int64, device=x.device)
            if hist is None:
                hist = _hist(x, None, hist_shape, hist_range, bins, scratch)
            return _finish(count, mean_b, m2_b, mn, mx, n_pos, n_sat, zero, zero, hist)
    if unit_dim % x.ndim == x.ndim - 1 and x.ndim > 2 and x.is_contiguous():
        x = x.view(-1, units)  # units last: rows of units, every reduction over dim 0
        dims, shape, hist_shape = (0,), [1, units], [1, 1] if layer_hist else [1, units]
    scratch = scratch or Scratch()
    if not x.is_contiguous():
        x = x.contiguous()
    buf = scratch.get(x.shape, x.dtype, x.device)  # one work tensor reused by every pass
    finite = False  # (sync-free: the masked path, whatever the data)
    if not sync_free:
        mean_b = x.mean(dims)
        # a NaN or Inf anywhere makes the mean, hence every centred value, non-finite: one
        # check of the sum of squares covers both (and overflow of the squares)
        centred = torch.sub(x, mean_b.view(shape), out=buf)
        m2_b = centred.square_().sum(dims, dtype=acc)
        finite = bool(torch.isfinite(m2_b).all())
        if not finite and bool(torch.isfinite(mean_b).all()):  # squares overflowed: float64
            m2_b = (x.double() - mean_b.double().view(shape)).square_().sum(dims)
            finite = True
    if finite:
        mn, mx = x.amin(dims), x.amax(dims)  # (torch.aminmax over dim 0: ~10x slower)
        count = torch.full((units,), n, dtype=torch.int64, device=x.device)
        nan = torch.zeros(units, dtype=torch.int64, device=x.device)
        inf = nan
        valid = x
        mask = None
    else:  # NaN/Inf present: count them, keep them out of every other statistic
        isnan = torch.isnan(x)
        isinf = torch.isinf(x)
        nan = isnan.sum(dims)
        inf = isinf.sum(dims)
        mask = ~(isnan | isinf)
        count = mask.sum(dims)
        xd = torch.where(mask, x, 0).double()
        safe = count.clamp(min=1).double()
        mean_b = xd.sum(dims) / safe
        d = torch.where(mask, xd - mean_b.view(shape), 0)
        m2_b = d.square_().sum(dims)
        mn = torch.where(mask, x, math.inf).amin(dims)
        mx = torch.where(mask, x, -math.inf).amax(dims)
        valid = torch.where(mask, x, 0)

    # counts as sums of a float comparison written into the float buffer: bool kernels are
    # ~3x slower, and sign().clamp_() is one more pass (measured 1.0 vs 0.64 ms, 2300 x 1024)
    n_pos = torch.gt(valid, 0, out=buf).sum(dims, dtype=acc)
    if band is None:
        n_sat = torch.zeros(units, dtype=torch.int64, device=x.device)
    else:
        centre, half = (band[0] + band[1]) / 2, (band[1] - band[0]) / 2
        sat = torch.sub(valid, centre, out=buf).abs_().sub_(half)
        if mask is not None:
            sat = sat.masked_fill_(~mask, -1.0)
        n_sat = sat.sign_().clamp_(min=0).sum(dims, dtype=acc)

    if layer_hist and bins and mask is None:  # interleaved counts, as the channel path
        counts = _LayerHist((*hist_range, bins), valid.numel(), valid.device, scratch)
        counts.add(valid, buf, (mn, mx))
        hist = counts.result()
    else:
        hist = _hist(valid, mask, hist_shape, hist_range, bins, scratch)
    return _finish(count, mean_b, m2_b, mn, mx, n_pos, n_sat, nan, inf, hist)


def _hist(
    valid: torch.Tensor,
    mask: torch.Tensor | None,
    shape: list[int],
    hist_range: tuple[float, float],
    bins: int,
    scratch: Scratch | None,
) -> torch.Tensor:
    """Fixed-edge histogram per unit ``(units, bins + 2)`` of ``valid`` (units at the dim
    where ``shape`` is not 1), leaving out the values where ``mask`` is False.

    Bin k holds [lo + k w, lo + (k+1) w), plus one underflow bin (-inf, lo) first and one
    overflow bin [hi, inf) last (the unit offset is added in floating point, exact below
    2**24, then converted). ``bins=0``: histograms switched off, an empty ``(units, 0)``.
    """
    units = math.prod(shape)
    if bins == 0:
        return torch.zeros(units, 0, dtype=torch.int64, device=valid.device)
    scratch = scratch or Scratch()
    buf = scratch.get(valid.shape, valid.dtype, valid.device)
    lo, hi = hist_range
    nbins = units * (bins + 2)
    q = torch.sub(valid, lo, out=buf).mul_(bins / (hi - lo)).floor_().clamp_(-1, bins)
    if _sync_free(valid.device):
        # histc: bincount's kernel without reading the maximum back. Each value is its bin
        # index's centre (k + 0.5: rounding in histc's bin arithmetic cannot move it out of
        # [k, k + 1)); left-out values go to -1, below the range, which histc skips. Counts
        # come back in the input's dtype: float64 once float32 could not hold them exactly.
        exact = torch.float32 if q.numel() < 2**24 and nbins < 2**22 else torch.float64
        centre = q.to(exact).add_(1.5)
        if units > 1:
            offset = torch.arange(units, device=valid.device, dtype=exact).mul_(bins + 2)
            centre += offset.view(shape)
        if mask is not None:
            centre = torch.where(mask, centre, -1.0)
        counts = torch.histc(centre.reshape(-1), bins=nbins, min=0, max=nbins)
        return counts.to(torch.int64).view(units, bins + 2)
    if units == 1:  # one histogram of the layer: no unit offsets
        idx = scratch.get(q.shape, torch.int32, q.device)
        idx.copy_(q.add_(1))
        if mask is not None:
            idx = idx[mask]
        return torch.bincount(idx.reshape(-1), minlength=nbins).view(1, bins + 2)
    offset = torch.arange(units, device=valid.device, dtype=q.dtype).mul_(bins + 2).add_(1)
    if nbins < 2**24:  # int32 indices: the conversion and bincount are ~1.5x faster
        idx = scratch.get(q.shape, torch.int32, q.device)
        idx.copy_(q.add_(offset.view(shape)))
    else:
        idx = scratch.get(q.shape, torch.int64, q.device)
        idx.copy_(q).add_(offset.to(torch.int64).view(shape))
    if mask is not None:
        idx = idx[mask]  # drop non-finite values
    return torch.bincount(idx.reshape(-1), minlength=nbins).view(units, bins + 2)


def _finish(*parts: torch.Tensor) -> State:
    """The batch state from (count, mean, m2, min, max, n_pos, n_sat, nan, inf, hist)."""
    count, mean_b, m2_b, mn, mx, n_pos, n_sat, nan, inf, hist = parts
    return {
        "count": count.to(torch.int64),
        "mean": mean_b.double(),
        "m2": m2_b.double(),
        "min": mn.double(),
        "max": mx.double(),
        "n_pos": n_pos.round().to(torch.int64),
        "n_sat": n_sat.round().to(torch.int64),
        "nan": nan.to(torch.int64),
        "inf": inf.to(torch.int64),
        "hist": hist,
    }


def _merge(a: State, b: State) -> State:
    """Combine two states (Chan et al.'s parallel update); associative and commutative."""
    na, nb = a["count"].double(), b["count"].double()
    n = na + nb
    safe = n.clamp(min=1)
    delta = b["mean"] - a["mean"]
    mean = torch.where(n > 0, (a["mean"] * na + b["mean"] * nb) / safe, 0.0)
    m2 = a["m2"] + b["m2"] + delta.square() * na * nb / safe
    return {
        "count": a["count"] + b["count"],
        "mean": mean,
        "m2": m2,
        "min": torch.minimum(a["min"], b["min"]),
        "max": torch.maximum(a["max"], b["max"]),
        "n_pos": a["n_pos"] + b["n_pos"],
        "n_sat": a["n_sat"] + b["n_sat"],
        "nan": a["nan"] + b["nan"],
        "inf": a["inf"] + b["inf"],
        "hist": a["hist"] + b["hist"],
    }


def _update(
    state: State,
    x: torch.Tensor,
    unit_dim: int,
    band: tuple[float, float] | None,
    hist_range: tuple[float, float],
    bins: int,
) -> State:
    """``state`` merged with the statistics of batch ``x``."""
    return _merge(state, _batch(x, unit_dim, band, hist_range, bins))


def _compute(state: State) -> dict[str, np.ndarray]:
    """Final per-unit arrays (NumPy, on the CPU) from a state.

    ``var`` is the population variance (divides by ``count``); units that saw no finite
    value get NaN mean/var/min/max and zero fractions.
    """
    s = {k: v.detach().cpu().numpy() for k, v in state.items()}
    count = s["count"]
    seen = count > 0
    total = count + s["nan"] + s["inf"]
    if seen.all():  # (the usual case: every unit saw a finite value, nothing to mask)
        mean, mn, mx = s["mean"].copy(), s["min"].copy(), s["max"].copy()
        var = np.maximum(s["m2"] / count, 0.0)
        frac_active, frac_sat = s["n_pos"] / count, s["n_sat"] / count
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(seen, s["mean"], np.nan)
            var = np.maximum(np.where(seen, s["m2"] / np.maximum(count, 1), np.nan), 0.0)
            mn = np.where(seen, s["min"], np.nan)
            mx = np.where(seen, s["max"], np.nan)
            frac_active = np.where(seen, s["n_pos"] / np.maximum(count, 1), 0.0)
            frac_sat = np.where(seen, s["n_sat"] / np.maximum(count, 1), 0.0)
    return {
        "count": count,
        "total": total,
        "mean": mean,
        "var": var,
        "min": mn,
        "max": mx,
        "frac_active": frac_active,
        "frac_saturated": frac_sat,
        "nan_count": s["nan"],
        "inf_count": s["inf"],
        "hist": s["hist"],
    }
