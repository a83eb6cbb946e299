"""``UnitStats``: the mergeable running state of one layer's per-unit statistics.

A thin stateful wrapper over the pure kernels of :mod:`netxray.stats._kernels`: ``update``
folds in a batch, ``merge`` another ``UnitStats`` (same settings), ``sync`` every
``torch.distributed`` rank's, and ``compute`` returns the final per-unit arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from netxray.stats._kernels import _KEYS, Scratch, State, _batch, _compute, _merge


class UnitStats:
    """Running per-unit statistics of a stream of activations: ``update / merge / compute``.

    ``unit_dim`` is the dimension of an update tensor that indexes units (1: the features
    of ``(batch, units)`` or the channels of ``(batch, channels, h, w)``; -1: the features
    of ``(batch, tokens, features)``). ``saturation`` is the open interval ``(lo, hi)``
    outside which a value is saturated (None: never). The histogram has ``bins`` equal bins
    over ``hist_range`` plus an underflow and an overflow bin, so edges are fixed and
    states merge exactly; ``bins=0`` switches histograms off (the costliest statistic,
    about a third of the hook's time). ``layer_hist``: one histogram ``(1, bins + 2)`` of
    all the layer's values instead of one per unit (cheaper; what a training watch
    stores). ``compiled``: reduce float CPU batches in one compiled pass (numba; see
    :mod:`._fused`), several times faster on the small batches of a training step, after a
    one-time cost per process (~0.7 s to load, ~15 s to compile on a machine's first use)
    that only a long stream of batches, such as a training watch's, pays back. The state
    lives on the device of the first update.
    """

    def __init__(
        self,
        *,
        unit_dim: int = 1,
        saturation: tuple[float, float] | None = None,
        hist_range: tuple[float, float] = (-8.0, 8.0),
        bins: int = 32,
        layer_hist: bool = False,
        compiled: bool = False,
    ) -> None:
        if bins < 0:
            raise ValueError(f"bins must be >= 0 (0: no histogram), got {bins}")
        lo, hi = float(hist_range[0]), float(hist_range[1])
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"hist_range must be finite with lo < hi, got {hist_range}")
        if saturation is not None and not saturation[0] < saturation[1]:
            raise ValueError(f"saturation must be an interval (lo, hi) with lo < hi, got {saturation}")
        self.unit_dim = unit_dim
        self.saturation = None if saturation is None else (float(saturation[0]), float(saturation[1]))
        self.hist_range = (lo, hi)
        self.bins = int(bins)
        self.layer_hist = bool(layer_hist)
        self.compiled = bool(compiled)
        self.state: State | None = None

    @property
    def hist_edges(self) -> np.ndarray:
        """The ``bins + 1`` finite edges; the first and last bins lie outside them
        (empty when ``bins=0``: no histogram)."""
        if self.bins == 0:
            return np.zeros(0)
        return np.linspace(self.hist_range[0], self.hist_range[1], self.bins + 1)

    def _same_config(self, other: UnitStats) -> None:
        mine = (self.saturation, self.hist_range, self.bins, self.layer_hist)
        theirs = (other.saturation, other.hist_range, other.bins, other.layer_hist)
        if mine != theirs:
            raise ValueError(
                f"cannot merge statistics with different settings {mine} and {theirs}; "
                "build both UnitStats with the same saturation, hist_range, bins and layer_hist"
            )

    def update(self, x: torch.Tensor, *, scratch: Scratch | None = None) -> UnitStats:
        """Add a batch ``x`` (batch, ...) to the statistics; returns self. ``scratch``:
        work buffers to reuse across calls (see :class:`Scratch`)."""
        with torch.no_grad():  # (in grad mode every small kernel pays autograd's checks)
            batch = _batch(x, self.unit_dim, self.saturation, self.hist_range, self.bins,
                           scratch, self.layer_hist, self.compiled)
        if self.state is not None and self.state["count"].shape != batch["count"].shape:
            raise ValueError(
                f"this batch has {batch['count'].shape[0]} units but earlier ones had "
                f"{self.state['count'].shape[0]}; check unit_dim={self.unit_dim}"
            )
        if self.state is None:
            self.state = batch
        else:
            with torch.no_grad():
                self.state = _merge(self.state, batch)
        return self

    def merge(self, other: UnitStats) -> UnitStats:
        """Fold ``other``'s statistics into this one (same settings); returns self."""
        self._same_config(other)
        if other.state is None:
            return self
        if self.state is None:
            self.state = {k: v.clone() for k, v in other.state.items()}
            return self
        if self.state["count"].shape != other.state["count"].shape:
            raise ValueError("cannot merge statistics of layers with different unit counts")
        theirs = {k: v.to(self.state[k].device) for k, v in other.state.items()}
        self.state = _merge(self.state, theirs)
        return self

    def reset(self) -> UnitStats:
        """Forget all data seen; returns self."""
        self.state = None
        return self

    def sync(self, group: Any = None) -> UnitStats:
        """Merge the statistics of every ``torch.distributed`` rank into each rank's copy.

        A no-op without an initialized process group. Every rank must call it (it is a
        collective) and must have seen at least one batch of the same layer.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        if self.state is None:
            raise RuntimeError("sync() before any update: every rank must see at least one batch")
        world = dist.get_world_size(group)
        gathered: dict[str, list[torch.Tensor]] = {}
        for k in _KEYS:
            t = self.state[k].contiguous()
            parts = [torch.empty_like(t) for _ in range(world)]
            dist.all_gather(parts, t, group=group)
            gathered[k] = parts
        merged = {k: gathered[k][0] for k in _KEYS}
        for r in range(1, world):  # same order on every rank: identical results everywhere
            merged = _merge(merged, {k: gathered[k][r] for k in _KEYS})
        self.state = merged
        return self

    def compute(self) -> dict[str, np.ndarray]:
        """Per-unit arrays: count, mean, var, min, max, frac_active, frac_saturated,
        nan_count, inf_count (each ``(units,)``) and hist ``(units, bins + 2)`` (``(1, bins + 2)``
        with ``layer_hist``)."""
        if self.state is None:
            raise RuntimeError("no data: call update() with at least one batch first")
        return _compute(self.state)

