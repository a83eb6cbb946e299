"""Per-unit statistics of a network's layers over whole datasets, in flat memory.

A *unit* is a feature of a Linear output (the last dimension) or a channel of a Conv output
(dimension 1; statistics pool batch and spatial positions). Each layer's statistics are
reduced inside a forward hook into mergeable sufficient statistics (count, mean, M2 by
Chan's parallel formula, min, max, counts above thresholds, NaN/Inf counts and a
fixed-edge histogram), so raw activations are never kept and any split of the data into
batches -- or across ``torch.distributed`` ranks -- gives the same result.

One concept per module:

- :mod:`~netxray.stats._kernels`: the pure, benchmarked kernels (``_batch``, ``_merge``,
  ``_compute``, the conv-channel fast path, histograms, the reused ``Scratch`` buffers);
- :mod:`~netxray.stats._state`: ``UnitStats``, the mergeable running state (``sync`` across
  ranks);
- :mod:`~netxray.stats._results`: ``LayerStats``, ``ParamStats``, ``NetworkStats``;
- :mod:`~netxray.stats._collect`: ``collect_stats`` (hooks, unit dimensions, gradients).

Activation families (what can die or saturate) live in :mod:`netxray.families`.
"""

from __future__ import annotations

from netxray.families import (
    DEFAULT_HIST_RANGES,
    RECTIFIER_FAMILY,
    RELU_FAMILY,
    activation_family,
    saturation_band,
)
from netxray.stats._collect import collect_stats, default_loss
from netxray.stats._kernels import Scratch
from netxray.stats._kernels import _batch as _batch  # the pure kernels, for tests and readers
from netxray.stats._kernels import _compute as _compute
from netxray.stats._kernels import _merge as _merge
from netxray.stats._kernels import _update as _update
from netxray.stats._results import LayerStats, NetworkStats, ParamStats
from netxray.stats._state import UnitStats

__all__ = [
    "DEFAULT_HIST_RANGES",
    "LayerStats",
    "NetworkStats",
    "ParamStats",
    "RECTIFIER_FAMILY",
    "RELU_FAMILY",
    "Scratch",
    "UnitStats",
    "activation_family",
    "collect_stats",
    "default_loss",
    "saturation_band",
]
