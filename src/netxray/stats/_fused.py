"""One-pass per-unit statistics of a CPU batch, in loops compiled by numba.

The PyTorch kernels of :mod:`._kernels` take a dozen passes over a batch (mean, centred
squares, min, max, counts, quantisation, conversion, ``bincount``), each a kernel call: on
the batches a training step records (256 x 512 float32) the calls, not the arithmetic, are
the cost. The loops of :mod:`._fused_loops` read each value once for all the statistics.
Only a ``UnitStats(compiled=True)`` takes them (a training watch, which pays their loading
back); one-shot analyses and accelerators keep the PyTorch kernels.

numba is imported and the loops compiled (then loaded from numba's on-disk cache) on first
use only. The loops release the GIL, so a watch's statistics thread runs them beside the
training thread. They run on one thread: split across a second one, a CNN's output took
5.0 -> 3.8 ms alone, but no less right after PyTorch's own parallel kernels, whose worker
threads keep spinning on the other core for a while.
"""

from __future__ import annotations

import math

import numpy as np
import torch

State = dict[str, torch.Tensor]

_TAKEN = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


def fused_applies(x: torch.Tensor) -> bool:
    """Whether :func:`fused_batch` takes ``x``: a non-empty floating-point CPU tensor."""
    return x.device.type == "cpu" and x.dtype in _TAKEN and x.numel() > 0


def fused_batch(x: torch.Tensor, unit_dim: int, band: tuple[float, float] | None,
                hist_range: tuple[float, float], bins: int, layer_hist: bool) -> State:
    """The batch state of ``x`` (as :func:`._kernels._batch` defines it), ``x`` viewed as
    ``(before, units, after)`` around ``unit_dim`` (not the batch dimension). Half
    precisions are reduced in float32."""
    from netxray.stats import _fused_loops as loops

    if x.ndim == 1:
        x, unit_dim = x.unsqueeze(1), 1
    ud = unit_dim % x.ndim
    if ud == 0:
        raise ValueError("the unit dimension cannot be the batch dimension (0)")
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # (half-precision sums and bin indices would be inexact)
    shape = x.shape
    a = x.detach().contiguous().view(math.prod(shape[:ud]), shape[ud],
                                     math.prod(shape[ud + 1:])).numpy()
    centre, half = (0.0, 0.0) if band is None else ((band[0] + band[1]) / 2,
                                                   (band[1] - band[0]) / 2)
    lo, hi = hist_range
    p = np.array((centre, half, lo, bins / (hi - lo), bins, -1, 1, 0), dtype=a.dtype)
    return _state(*loops.batch(a, p, band is not None, bins, layer_hist))


def _state(floats: np.ndarray, counts: np.ndarray, hist: np.ndarray) -> State:
    """The state from the loops' three arrays (each row a view, no copy)."""
    mean, m2, mn, mx = torch.from_numpy(floats)
    count, n_pos, n_sat, nan, inf = torch.from_numpy(counts)
    return {"count": count, "mean": mean, "m2": m2, "min": mn, "max": mx, "n_pos": n_pos,
            "n_sat": n_sat, "nan": nan, "inf": inf, "hist": torch.from_numpy(hist)}
