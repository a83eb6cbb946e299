"""The results of :func:`netxray.stats.collect_stats`: per layer, per parameter, per network.

Frozen dataclasses of arrays and plain values; equality, ``to_dict`` and ``save``/``load``
come from the :class:`~netxray._results.Result` base (hence ``eq=False`` here).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from netxray._results import Result


@dataclass(frozen=True, eq=False)
class LayerStats(Result):
    """One layer's per-unit statistics over a dataset.

    Arrays are ``(units,)`` unless said otherwise. ``count``: finite values seen per unit
    (samples x spatial positions); ``mean``/``var`` (population variance), ``min``/``max``
    over finite values; ``frac_active``: fraction > 0; ``frac_saturated``: fraction outside
    ``saturation`` (zeros when the family has no band); ``nan_count``/``inf_count``;
    ``hist`` ``(units, len(hist_edges) + 1)``: counts below the first edge, between edges,
    and at or above the last one. ``family`` is ``relu``/``rectifier``/``tanh``/``sigmoid``/
    ``linear``; ``shape`` is one row's output shape; ``calls`` is 1 (a module called k times
    per forward pass is k layers, ``relu``, ``relu#1``, ...; kept for saved results).
    Rows are samples, or real tokens when ``per_token``: the batches carried an attention
    mask and the layer outputs ``(batch, seq, ...)`` sequences, so padding was left out and
    ``shape`` is one token's. ``block``: the layer is a transformer block's output (its
    hidden states), which the gradient and growth rules compare with each other only.
    With gradients: ``grad_abs_mean`` (units,) mean |d loss_n / d a| per row,
    ``grad_norm`` the root-mean-square over rows of the per-row gradient norm (of the loss
    of one sample, or of one token for a per-token loss).
    """

    name: str
    module_type: str
    family: str
    shape: tuple[int, ...]
    calls: int
    count: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    min: np.ndarray
    max: np.ndarray
    frac_active: np.ndarray
    frac_saturated: np.ndarray
    nan_count: np.ndarray
    inf_count: np.ndarray
    hist: np.ndarray
    hist_edges: np.ndarray
    saturation: tuple[float, float] | None = None
    grad_abs_mean: np.ndarray | None = None
    grad_norm: float | None = None
    per_token: bool = False
    block: bool = False

    @property
    def units(self) -> int:
        return int(self.count.shape[0])

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    @property
    def n_nonfinite(self) -> int:
        return int(self.nan_count.sum() + self.inf_count.sum())

    @functools.cached_property  # (read by several health rules per evaluation)
    def scale(self) -> float:
        """Root-mean-square activation over all units and values: sqrt(mean(var + mean^2))."""
        w = self.count.astype(np.float64)
        ok = w > 0
        if not ok.any():
            return math.nan
        var, mean, w = self.var[ok], self.mean[ok], w[ok]
        with np.errstate(over="ignore", invalid="ignore"):
            ms = (var + mean**2) * w
            rms = float(np.sqrt(ms.sum() / w.sum()))
            if math.isinf(rms):  # (rare: only then the rescale's extra passes)
                big = max(float(np.sqrt(np.maximum(var, 0)).max()), float(np.abs(mean).max()))
                if math.isfinite(big):  # mean^2 overflowed: rescale by big
                    ms = (var / big / big + (mean / big) ** 2) * w
                    rms = big * float(np.sqrt(ms.sum() / w.sum()))
        return rms

    @property
    def grad_rms(self) -> float | None:
        """``grad_norm`` per element of one row's output (real tokens only for per-token
        layers): comparable across widths and paddings."""
        if self.grad_norm is None:
            return None
        return self.grad_norm / math.sqrt(max(math.prod(self.shape), 1))


@dataclass(frozen=True, eq=False)
class ParamStats(Result):
    """A parameter's norm and the norm of the full-data gradient of the mean loss."""

    name: str
    shape: tuple[int, ...]
    weight_norm: float
    grad_norm: float | None = None


@dataclass(frozen=True, eq=False)
class NetworkStats(Result, Mapping[str, LayerStats]):
    """``collect_stats``'s result: a mapping ``layer name -> LayerStats`` in forward order.

    Also: ``n_samples`` seen, ``loss`` (mean over the data; None without ``loss_fn`` and
    targets), ``params`` (``name -> ParamStats``; gradient norms only with gradients),
    ``output_shape`` (one sample's model output shape).
    """

    layers: dict[str, LayerStats]
    n_samples: int
    loss: float | None = None
    params: dict[str, ParamStats] = field(default_factory=dict)
    output_shape: tuple[int, ...] = ()

    def __getitem__(self, name: str) -> LayerStats:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(f"no statistics for {name!r}; layers: {', '.join(self.layers)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    __hash__ = None  # type: ignore[assignment]

