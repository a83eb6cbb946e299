"""The compiled loops of :mod:`._fused` (this module imports numba: import it lazily).

:func:`batch` reduces a batch viewed as ``(before, units, after)``. Its fast loops
(:func:`_rows` for ``after == 1``, :func:`_channels` otherwise) keep per unit the shifted
sums ``sum(v - k)`` and ``sum((v - k)^2)`` (``k``: the unit's mean over the first rows),
min, max, the counts above zero and outside the saturation band, and the histogram, in
blocks of ``_BLOCK`` rows summed in the batch's dtype (vectorised: float32 twice as wide),
each block then added in float64. ``p`` holds, in the batch's dtype: band centre, band
half-width, histogram low edge, bins per unit of value, bins, -1, 1 and 0, so that bins and
bands fall where PyTorch's kernels in that dtype put them. The fast loops assume finite
values and report a block whose sum of squares is not (NaN or Inf in the batch, or squares
beyond the dtype): :func:`_masked` then counts the batch again in float64, leaving NaN and
Inf out. A histogram index is clamped before it is used, NaN included, so no loop writes
outside its counts.

:func:`square_sums` and :func:`square_sum` give parameter norms: one read of each array.

Inner loops run over ``range(n)`` of arrays sliced per block: LLVM vectorises those, and
not the same loops over ``range(start, stop)`` (measured: 5-10x slower sums), nor loops with
a branch (Python's ``min``/``max``). The histogram's counting is a scatter, which does not
vectorise: it runs in a loop of its own over indices computed (vectorised) beforehand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

#: Rows summed in the batch's dtype before they are added in float64.
_BLOCK = 64

#: Elements of a flat array summed in its dtype before they are added in float64.
_FLAT_BLOCK = 1024

#: Interleaved copies of the histogram: consecutive values count into different copies, so
#: their increments do not wait on each other (a ReLU puts half its values in one bin).
#: A power of two (a mask picks the copy).
COPIES = 8



def _compiled(**flags: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit`` without the GIL, cached on disk where numba finds a writable place
    (next to this file, else the user's cache directory), else compiled in each process."""
    def wrap(fn: Callable[..., Any]) -> Any:
        try:
            return numba.njit(nogil=True, cache=True, **flags)(fn)
        except RuntimeError:  # ("cannot cache function ...: no locator available")
            return numba.njit(nogil=True, **flags)(fn)
    return wrap


_jit = _compiled()
_sum_jit = _compiled(fastmath={"reassoc"})  # (sums of squares: any order will do)


@numba.njit(inline="always")
def _bin(v, lo, scale, top, minus_one):
    """The histogram index of ``v``: 0 below the low edge, ``bins + 1`` at or above the
    high one (``top = bins``); NaN goes to 0 (the caller discards the counts then).
    ``fmax``/``fmin`` clamp without branches (they vectorise) and return the other operand
    for a NaN."""
    q = np.fmin(np.fmax(np.floor((v - lo) * scale), minus_one), top)
    return np.int32(q) + 1


@numba.njit(inline="always")
def _add_row(row, k, p, banded, bins, b1, b2, bpos, bsat, bmin, bmax, idx, offset):
    """Add one row of values (its shifts ``k``, one per value) to the block's accumulators,
    and put each value's index into the flat histogram in ``idx``: its bin plus
    ``offset`` (the copy, or the unit, that value counts in). ``np.minimum``/``np.maximum``,
    not ``min``/``max``: Python's builtins compile to branches that stop the loop
    vectorising (measured: 1.2 against 0.5 ns per value)."""
    centre, half, lo, scale, top, minus_one, one, zero = (p[0], p[1], p[2], p[3], p[4], p[5],
                                                          p[6], p[7])
    for c in range(row.size):
        v = row[c]
        d = v - k[c]
        b1[c] += d
        b2[c] += d * d
        bmin[c] = np.minimum(bmin[c], v)
        bmax[c] = np.maximum(bmax[c], v)
        bpos[c] += one if v > zero else zero
    if banded:
        for c in range(row.size):
            bsat[c] += one if abs(row[c] - centre) > half else zero
    if bins:
        for c in range(row.size):
            idx[c] = _bin(row[c], lo, scale, top, minus_one) + offset[c]


@numba.njit(inline="always")
def _count(flat, idx):
    """One count per index (a scatter: it does not vectorise, so it runs apart)."""
    for c in range(idx.size):
        flat[idx[c]] += 1


@numba.njit(inline="always")
def _offsets(size, width, per_value):
    """Where value ``c`` of a row counts in a flat histogram of rows of ``width``: in row
    ``c`` (``per_value``: one histogram per value) or in copy ``c % COPIES``."""
    out = np.empty(size, np.uint32)
    for c in range(size):
        out[c] = (c if per_value else c & (COPIES - 1)) * width
    return out


@_jit
def batch(x, p, banded, bins, layer_hist):
    """The statistics of ``x`` (before, units, after), C-contiguous: ``(floats, counts,
    hist)``, ``floats`` rows: mean, m2, min, max; ``counts`` rows: count, n_pos, n_sat, NaN,
    Inf (one column per unit); ``hist`` (1 if ``layer_hist`` else units, bins + 2)."""
    n, units, length = x.shape
    floats = np.zeros((4, units))
    counts = np.zeros((5, units), np.int64)
    hist = np.zeros((1 if layer_hist else units, COPIES if layer_hist else 1,
                     bins + 2 if bins else 0), np.int64)
    shift = np.zeros(units)
    floats[2] = math.inf
    floats[3] = -math.inf
    if length == 1:
        finite = _rows(x.reshape(n, units), p, banded, bins, layer_hist, hist, floats, counts,
                       shift)
    else:
        finite = _channels(x, p, banded, bins, layer_hist, hist, floats, counts, shift)
    if finite:  # shifted sums -> mean and centred m2
        total = n * length
        for u in range(units):
            s1, s2 = floats[0, u], floats[1, u]
            floats[0, u] = shift[u] + s1 / total
            floats[1, u] = max(s2 - s1 * s1 / total, 0.0)
            counts[0, u] = total
    else:  # NaN or Inf somewhere (or squares beyond the dtype): count again, leaving them out
        floats[:2] = 0.0
        floats[2] = math.inf
        floats[3] = -math.inf
        counts[:] = 0
        hist[:] = 0
        _masked(x, p, banded, bins, layer_hist, hist, floats, counts)
    return floats, counts, hist.sum(axis=1)


@_jit
def _rows(x, p, banded, bins, layer_hist, hist, floats, counts, shift):
    """``x`` (rows, units): units are the inner loop (a sample's or a token's features).
    Leaves the shifted sums in ``floats[:2]``; returns whether every value was finite."""
    r, units = x.shape
    zero = p[7]
    first = min(r, _BLOCK)
    for i in range(first):
        for u in range(units):
            shift[u] += x[i, u]
    k = x[0] * zero
    for u in range(units):
        k[u] = shift[u] / first
        shift[u] = k[u]  # (the shift the sums are taken from: in the batch's dtype)
    b1, b2, bpos, bsat, bmin, bmax = k * zero, k * zero, k * zero, k * zero, k * zero, k * zero
    idx = np.empty(units, np.uint32)
    offset = _offsets(units, hist.shape[2], not layer_hist)
    flat = hist.reshape(-1)  # ((units or 1) x copies x (bins + 2))
    finite = True
    for start in range(0, r, _BLOCK):
        b1[:] = zero
        b2[:] = zero
        bpos[:] = zero
        bsat[:] = zero
        bmin[:] = x[start]
        bmax[:] = x[start]
        for i in range(start, min(r, start + _BLOCK)):
            _add_row(x[i], k, p, banded, bins, b1, b2, bpos, bsat, bmin, bmax, idx, offset)
            if bins:
                _count(flat, idx)
        for u in range(units):
            finite &= abs(b2[u]) < math.inf
            floats[0, u] += b1[u]
            floats[1, u] += b2[u]
            floats[2, u] = np.minimum(floats[2, u], bmin[u])
            floats[3, u] = np.maximum(floats[3, u], bmax[u])
            counts[1, u] += np.int64(bpos[u])
            counts[2, u] += np.int64(bsat[u])
    return finite


@_jit
def _channels(x, p, banded, bins, layer_hist, hist, floats, counts, shift):
    """``x`` (before, units, after): each unit's values come in contiguous runs of
    ``after`` (a channel's positions), accumulated position by position across a block of
    runs, then summed per unit. As :func:`_rows` otherwise."""
    n, units, length = x.shape
    zero = p[7]
    z = x[0, 0] * zero
    b1, b2, bpos, bsat, bmin, bmax = z.copy(), z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
    ks = z.copy()  # the unit's shift, once per position
    idx = np.empty(length, np.uint32)
    copies = np.zeros((COPIES, hist.shape[2]), np.int64)
    offset = _offsets(length, hist.shape[2], False)
    flat = copies.reshape(-1)
    finite = True
    for u in range(units):
        for j in range(length):  # shift: the unit's mean over the first run
            shift[u] += x[0, u, j]
        shift[u] /= length
        ks[:] = shift[u]  # (storing casts the float64 shift to the batch's dtype)
        shift[u] = ks[0]  # (the shift the sums are taken from)
        for start in range(0, n, _BLOCK):
            b1[:] = zero
            b2[:] = zero
            bpos[:] = zero
            bsat[:] = zero
            bmin[:] = x[start, u]
            bmax[:] = x[start, u]
            for a in range(start, min(n, start + _BLOCK)):
                _add_row(x[a, u], ks, p, banded, bins, b1, b2, bpos, bsat, bmin, bmax, idx,
                         offset)
                if bins:
                    _count(flat, idx)
            t1, t2, tpos, tsat = 0.0, 0.0, 0.0, 0.0
            for j in range(length):
                t1 += b1[j]
                t2 += b2[j]
                tpos += bpos[j]
                tsat += bsat[j]
                floats[2, u] = np.minimum(floats[2, u], bmin[j])
                floats[3, u] = np.maximum(floats[3, u], bmax[j])
            finite &= abs(t2) < math.inf
            floats[0, u] += t1
            floats[1, u] += t2
            counts[1, u] += np.int64(tpos)
            counts[2, u] += np.int64(tsat)
        if bins and not layer_hist:  # this unit's histogram
            for c in range(COPIES):
                hist[u, 0] += copies[c]
            copies[:] = 0
    if bins and layer_hist:
        hist[0] += copies
    return finite


@_jit
def _masked(x, p, banded, bins, layer_hist, hist, floats, counts):
    """Any values: NaN and Inf are counted and left out of every other statistic; mean and
    m2 (centred on it) in float64, in two passes."""
    n, units, length = x.shape
    centre, half, lo, scale, top, minus_one = p[0], p[1], p[2], p[3], p[4], p[5]
    mean = floats[0]
    for a in range(n):
        for u in range(units):
            for j in range(length):
                v = x[a, u, j]
                if v != v:
                    counts[3, u] += 1
                elif abs(v) == math.inf:
                    counts[4, u] += 1
                else:
                    counts[0, u] += 1
                    mean[u] += v
    for u in range(units):
        mean[u] = mean[u] / counts[0, u] if counts[0, u] else 0.0
    for a in range(n):
        for u in range(units):
            for j in range(length):
                v = x[a, u, j]
                if abs(v) < math.inf:
                    d = np.float64(v) - mean[u]
                    floats[1, u] += d * d
                    floats[2, u] = min(floats[2, u], v)
                    floats[3, u] = max(floats[3, u], v)
                    counts[1, u] += v > 0
                    if banded:
                        counts[2, u] += abs(v - centre) > half
                    if bins:
                        hist[0 if layer_hist else u, 0, _bin(v, lo, scale, top, minus_one)] += 1


@_sum_jit
def _block_squares(w):
    s = np.float32(0)  # (float64 for float64 data; starting from w[0] * 0 stops vectorising)
    for i in range(w.size):
        s += w[i] * w[i]
    return s


@_sum_jit
def _block_pair(w, p, keep):
    sw = np.float32(0)  # (as in _block_squares)
    sp = sw
    sd = sw
    for i in range(w.size):
        a = w[i]
        b = p[i]
        d = a - b
        sw += a * a
        sp += b * b
        sd += d * d
        if keep:
            p[i] = a
    return sw, sp, sd


@_jit
def square_sum(w):
    """``sum(w^2)`` of a flat array, in float64 from blocks summed in its dtype."""
    total = 0.0
    for start in range(0, w.size, _FLAT_BLOCK):
        total += _block_squares(w[start:start + _FLAT_BLOCK])
    return total


@_jit
def square_sums(w, p, keep):
    """``sum(w^2), sum(p^2), sum((w - p)^2)`` of two flat arrays of one length, as
    :func:`square_sum`; ``keep``: copy ``w`` into ``p`` on the way (one pass for both)."""
    sw, sp, sd = 0.0, 0.0, 0.0
    for start in range(0, w.size, _FLAT_BLOCK):
        ws, ps = w[start:start + _FLAT_BLOCK], p[start:start + _FLAT_BLOCK]
        a, b, c = _block_pair(ws, ps, keep)
        sw += a
        sp += b
        sd += c
    return sw, sp, sd
