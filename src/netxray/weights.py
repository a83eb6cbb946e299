"""Weight health: spectral norm and stable rank per layer, update-to-weight ratios.

The spectral norm ``||W||_2`` (largest singular value) bounds how much a layer can stretch
its input; the stable rank ``||W||_F^2 / ||W||_2^2`` (between 1 and rank) says how many
directions carry weight. Between two checkpoints, ``||W1 - W0||_F / ||W0||_F`` is the
relative update; per optimizer step a ratio around 1e-3 is the usual rule of thumb, far
above it the learning rate is too high.

This module only computes; the rule that judges update ratios is
:func:`netxray.health.weight_findings`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from netxray._results import Result


@dataclass(frozen=True, eq=False)
class LayerWeights(Result):
    """One weight matrix (conv kernels reshaped to ``(out, in * k...)``).

    ``update_ratio``: ``||W - W_prev||_F / ||W_prev||_F``; None without a previous state,
    NaN where the ratio is not defined (``W`` or ``W_prev`` holds NaN/Inf, or ``W_prev`` is
    all zeros), never ``inf``, which would read as a huge update.
    """

    name: str
    shape: tuple[int, ...]
    fro_norm: float
    spectral_norm: float
    stable_rank: float
    finite: bool
    update_ratio: float | None = None


@dataclass(frozen=True, eq=False)
class WeightHealth(Result):
    """Per-parameter weight health, keyed by parameter name (``fc1.weight``)."""

    layers: dict[str, LayerWeights]

    def __getitem__(self, name: str) -> LayerWeights:
        return self.layers[name]

    def __len__(self) -> int:
        return len(self.layers)


def _state(weights: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(weights, nn.Module):
        return {n: p.detach() for n, p in weights.named_parameters()}
    if isinstance(weights, Mapping):
        return {n: torch.as_tensor(t).detach() for n, t in weights.items()}
    raise TypeError(
        f"weights must be an nn.Module or a state dict, got {type(weights).__name__}"
    )


def _update_ratio(name: str, m: torch.Tensor, w: torch.Tensor, prev: torch.Tensor) -> float:
    """``||W - W_prev||_F / ||W_prev||_F``, NaN where undefined (non-finite or zero W_prev)."""
    if tuple(prev.shape) != tuple(w.shape):
        raise ValueError(
            f"previous weights for {name!r} have shape {tuple(prev.shape)}, the current ones "
            f"{tuple(w.shape)}: pass a state of the same model"
        )
    w0 = prev.to(m.device).reshape(m.shape).double()
    if not (bool(torch.isfinite(m).all()) and bool(torch.isfinite(w0).all())):
        return math.nan
    n0 = float(torch.linalg.matrix_norm(w0))
    return float(torch.linalg.matrix_norm(m - w0)) / n0 if n0 > 0 else math.nan


def weight_health(
    weights: nn.Module | Mapping[str, torch.Tensor],
    previous: nn.Module | Mapping[str, torch.Tensor] | None = None,
) -> WeightHealth:
    """Spectral norm, stable rank and (given ``previous``) update ratio of each matrix.

    ``weights``/``previous``: a model or a state dict. Only floating parameters with two
    or more dimensions count (biases and norm scales are left out). A previous state of
    another shape raises.
    """
    now = _state(weights)
    before = None if previous is None else _state(previous)
    out: dict[str, LayerWeights] = {}
    for name, w in now.items():
        if not w.is_floating_point() or w.ndim < 2:
            continue
        m = w.reshape(w.shape[0], -1).double()
        finite = bool(torch.isfinite(m).all())
        fro = float(torch.linalg.matrix_norm(m)) if finite else math.nan
        spec = float(torch.linalg.matrix_norm(m, ord=2)) if finite else math.nan
        stable = fro**2 / spec**2 if finite and spec > 0 else math.nan
        ratio = None
        if before is not None and name in before:
            ratio = _update_ratio(name, m, w, before[name])
        out[name] = LayerWeights(
            name=name, shape=tuple(w.shape), fro_norm=fro, spectral_norm=spec,
            stable_rank=stable, finite=finite, update_ratio=ratio,
        )
    return WeightHealth(layers=out)
