"""Gradient methods: how the target output changes with each input feature.

Saliency and input x gradient take one gradient per sample, in one forward+backward pass
(or one per chunk of ``internal_batch_size`` rows). Integrated gradients and SmoothGrad
evaluate many points per sample (along a path from a baseline, or noisy copies of the
input); those points are stacked into one batch and run one forward+backward pass per chunk.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from torch import nn

from netxray._checks import preserved_state
from netxray.attribution._engine import (
    Baselines,
    IGRule,
    Target,
    _baselines,
    _chunk_rows,
    _forward_chunks,
    _ig_rule,
    _integrate,
    _Method,
    _plan,
    _resolve_target,
    _select,
    _target_grad,
)
from netxray.attribution.results import Attribution


class Saliency(_Method):
    """The gradient of the target output w.r.t. each input feature (Simonyan et al. 2014).

    ``abs=True`` (Captum's default) gives its magnitude; ``abs=False`` keeps the sign.
    """

    name = "saliency"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        abs: bool = True,  # noqa: A002 - Captum's name
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``: d output[target] / d input (absolute if ``abs``)."""
        x = self._inputs(inputs)
        g, t = _gradients(self.model, x, target, internal_batch_size)
        values = g.abs() if abs else g
        return Attribution(values, x, t, None, self.name, params={"abs": bool(abs)})


class InputXGradient(_Method):
    """Input times gradient: a first-order estimate of each feature's contribution."""

    name = "input_x_gradient"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``: input * d output[target] / d input."""
        x = self._inputs(inputs)
        g, t = _gradients(self.model, x, target, internal_batch_size)
        return Attribution(g * x, x, t, None, self.name)


def _gradients(
    model: nn.Module, x: torch.Tensor, target: Target, internal_batch_size: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward+backward over the batch (or over chunks of ``internal_batch_size``)."""
    with preserved_state(model):
        if internal_batch_size is None or x.shape[0] <= _chunk_rows(internal_batch_size, x):
            return _target_grad(model, x, target)
        rows = _chunk_rows(internal_batch_size, x)
        t_all = None
        if not isinstance(target, str | int | np.integer) and target is not None:
            t_all = torch.as_tensor(target)
            if t_all.ndim != 1 or t_all.shape[0] != x.shape[0]:
                raise ValueError(
                    f"target has shape {tuple(t_all.shape)}; pass one int per sample, "
                    f"shape ({x.shape[0]},)"
                )
        grads, ts = [], []
        for s in range(0, x.shape[0], rows):
            tb = target if t_all is None else t_all[s : s + rows]
            g, t = _target_grad(model, x[s : s + rows], tb)
            grads.append(g)
            ts.append(t)
        return torch.cat(grads), torch.cat(ts)


class IntegratedGradients(_Method):
    """Integrated gradients (Sundararajan et al. 2017): gradients averaged along the straight
    path from a baseline to the input, times (input - baseline).

    The attributions add up to ``F(x) - F(baseline)`` (completeness); ``delta`` reports how
    far the numerical integral is from that, per sample. Defaults match Captum's: a zero
    baseline, 50 Gauss-Legendre points.
    """

    name = "integrated_gradients"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        baselines: Baselines = None,
        n_steps: int = 50,
        method: IGRule = "gausslegendre",
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``, ``delta`` ``(batch,)``.

        ``baselines``: ``None`` (zeros), a number, one sample ``(...)`` (e.g. the training
        data's mean ``X_train.mean(0)``) or one per input ``(batch, ...)``.
        ``internal_batch_size`` bounds the rows (points x samples) of each forward pass.
        """
        x = self._inputs(inputs)
        base = _baselines(baselines, x)
        alphas, weights = _ig_rule(method, n_steps)
        rows = _chunk_rows(internal_batch_size, x)
        model = self.model
        with preserved_state(model):
            f_x = _forward_chunks(model, x, rows)
            t = _resolve_target(target, f_x)
            values = _integrate(
                lambda xs, ts: _target_grad(model, xs, ts, checked=True)[0],
                x,
                base,
                t,
                alphas,
                weights,
                rows,
            )
            f_b = _forward_chunks(model, base, rows)
            f_b = f_b.expand(x.shape[0], -1) if f_b.shape[0] == 1 else f_b
            delta = values.flatten(1).sum(1) - (_select(f_x, t) - _select(f_b, t))
        params = {"n_steps": int(n_steps), "method": method}
        return Attribution(values, x, t, delta, self.name, params=params)


_VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")


class SmoothGrad(_Method):
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the input.

    ``variant``: ``"smoothgrad"`` (mean gradient), ``"smoothgrad_sq"`` (mean squared
    gradient) or ``"vargrad"`` (variance of the gradient). Noise is Gaussian with standard
    deviation ``noise_std`` in input units (the paper suggests 10-20% of the input range),
    drawn in float32 as Captum does; ``seed`` makes it repeatable (``None`` uses torch's
    global generator). The same seed and ``internal_batch_size`` give the same result.
    """

    name = "smoothgrad"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        noise_std: float = 0.15,
        n_samples: int = 20,
        seed: int | None = None,
        variant: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = "smoothgrad",
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``; the target is chosen at the clean input."""
        if variant not in _VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {list(_VARIANTS)}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        if not (isinstance(noise_std, int | float) and math.isfinite(noise_std) and noise_std >= 0):
            raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
        x = self._inputs(inputs)
        rows = _chunk_rows(internal_batch_size, x)
        model = self.model
        n, shape = x.shape[0], x.shape[1:]
        gen = None
        if seed is not None:
            gen = torch.Generator(device=x.device).manual_seed(int(seed))
        with preserved_state(model):
            # only "pred" needs every output; other targets just need the output width
            probe = x if isinstance(target, str) else x[:1]
            out = _forward_chunks(model, probe, rows)
            t = _resolve_target(target, out if out.shape[0] == n else out.expand(n, -1))
            mean = torch.zeros_like(x)
            mean_sq = torch.zeros_like(x) if variant != "smoothgrad" else None
            for sl, pl in _plan(n, n_samples, rows):
                xb, tb = x[sl], t[sl]
                b, k = xb.shape[0], pl.stop - pl.start
                noise = torch.normal(
                    0.0, float(noise_std), size=(b * k, *shape), generator=gen,
                    dtype=torch.float32, device=x.device,
                )  # fmt: skip
                noisy = xb.repeat_interleave(k, dim=0) + noise.to(x.dtype)
                g = _target_grad(model, noisy, tb.repeat_interleave(k), checked=True)[0].view(
                    b, k, *shape
                )
                mean[sl] += g.sum(1)
                if mean_sq is not None:
                    mean_sq[sl] += g.square().sum(1)
        mean /= n_samples
        if variant == "smoothgrad":
            values = mean
        else:
            assert mean_sq is not None
            mean_sq /= n_samples
            values = mean_sq if variant == "smoothgrad_sq" else mean_sq - mean * mean
        params = {
            "noise_std": float(noise_std),
            "n_samples": int(n_samples),
            "seed": seed,
            "variant": variant,
        }
        return Attribution(values, x, t, None, self.name, params=params)
