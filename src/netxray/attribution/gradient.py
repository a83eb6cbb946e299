"""Gradient methods: how the target output changes with each input feature.

Saliency and input x gradient take one gradient per sample, in one forward+backward pass
(or one per chunk of ``internal_batch_size`` rows). Integrated gradients and SmoothGrad
evaluate many points per sample (along a path from a baseline, or noisy copies of the
input); those points are stacked into one batch and run one forward+backward pass per chunk.

Every method takes Captum's calling convention: ``inputs`` a tensor or a tuple of tensors,
``additional_forward_args`` passed to the model after them; ``values`` come back shaped
like ``inputs`` (a tuple for a tuple).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from netxray._checks import preserved_state
from netxray.attribution._call import (
    Inputs,
    _interleave,
    _rows_of,
    _untuple,
    _warn_nonfinite,
)
from netxray.attribution._engine import (
    _AUTO_CHUNK_ELEMENTS,
    Baselines,
    IGRule,
    Target,
    _baselines_for,
    _chunk_rows,
    _forward_chunks,
    _ig_rule,
    _integrate,
    _Method,
    _resolve_target,
    _row_sums,
    _select,
    _target_grads,
)
from netxray.attribution.results import Attribution


class Saliency(_Method):
    """The gradient of the target output w.r.t. each input feature (Simonyan et al. 2014).

    ``abs=True`` (Captum's default) gives its magnitude; ``abs=False`` keeps the sign.
    """

    name = "saliency"

    def attribute(
        self,
        inputs: Inputs,
        *,
        target: Target,
        abs: bool = True,  # noqa: A002 - Captum's name
        additional_forward_args: Any = None,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``: d output[target] / d input (absolute if ``abs``)."""
        xs, is_tuple, args = self._prepare(inputs, additional_forward_args)
        gs, t = _gradients(self.model, xs, args, target, internal_batch_size)
        values = tuple(g.abs() for g in gs) if abs else gs
        _warn_nonfinite(self.model, values, self.name)
        return Attribution(
            _untuple(values, is_tuple), _untuple(xs, is_tuple), t, None, self.name,
            params={"abs": bool(abs)},
        )  # fmt: skip


class InputXGradient(_Method):
    """Input times gradient: a first-order estimate of each feature's contribution."""

    name = "input_x_gradient"

    def attribute(
        self,
        inputs: Inputs,
        *,
        target: Target,
        additional_forward_args: Any = None,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``: input * d output[target] / d input."""
        xs, is_tuple, args = self._prepare(inputs, additional_forward_args)
        gs, t = _gradients(self.model, xs, args, target, internal_batch_size)
        values = tuple(g * x for g, x in zip(gs, xs, strict=True))
        _warn_nonfinite(self.model, values, self.name)
        return Attribution(_untuple(values, is_tuple), _untuple(xs, is_tuple), t, None, self.name)


def _gradients(
    model: nn.Module,
    xs: tuple[torch.Tensor, ...],
    args: tuple[Any, ...],
    target: Target,
    internal_batch_size: int | None,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """One forward+backward over the batch (or over chunks of ``internal_batch_size``)."""
    n = xs[0].shape[0]
    with preserved_state(model):
        if internal_batch_size is None or n <= _chunk_rows(internal_batch_size, xs):
            return _target_grads(model, xs, target, args)
        rows = _chunk_rows(internal_batch_size, xs)
        t_all = None
        if not isinstance(target, str | int | np.integer) and target is not None:
            t_all = torch.as_tensor(target)
            if t_all.ndim != 1 or t_all.shape[0] != n:
                raise ValueError(
                    f"target has shape {tuple(t_all.shape)}; pass one int per sample, "
                    f"shape ({n},)"
                )
        grads: list[tuple[torch.Tensor, ...]] = []
        ts = []
        for s in range(0, n, rows):
            sl = slice(s, min(s + rows, n))
            tb = target if t_all is None else t_all[sl]
            g, t = _target_grads(model, tuple(x[sl] for x in xs), tb, _rows_of(args, sl))
            grads.append(g)
            ts.append(t)
        return tuple(torch.cat(parts) for parts in zip(*grads, strict=True)), torch.cat(ts)


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
        inputs: Inputs,
        *,
        target: Target,
        baselines: Baselines | tuple[Baselines, ...] = None,
        additional_forward_args: Any = None,
        n_steps: int = 50,
        method: IGRule = "gausslegendre",
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)`` (a tuple for tuple inputs), ``delta`` ``(batch,)``.

        ``baselines``: ``None`` (zeros), a number, one sample ``(...)`` (e.g. the training
        data's mean ``X_train.mean(0)``) or one per input ``(batch, ...)``; a tuple gives one
        per input tensor. ``internal_batch_size`` bounds the rows (points x samples) of each
        forward pass; Riemann rules take any ``n_steps`` (the work is done chunk by chunk).
        """
        xs, is_tuple, args = self._prepare(inputs, additional_forward_args)
        bases = _baselines_for(baselines, xs)
        rule = _ig_rule(method, n_steps)
        n = xs[0].shape[0]
        rows = _chunk_rows(internal_batch_size, xs, n * len(rule), "IntegratedGradients")
        model = self.model
        with preserved_state(model):
            f_x = _forward_chunks(model, xs, rows, args)
            t = _resolve_target(target, f_x)
            values = _integrate(
                lambda s, ts, a: _target_grads(model, s, ts, a, checked=True)[0],
                xs, bases, t, rule, rows, args,
            )  # fmt: skip
            f_b = _at_baselines(model, bases, n, rows, args)
            delta = _row_sums(values) - (_select(f_x, t) - _select(f_b, t))
        _warn_nonfinite(model, values, self.name)
        params = {"n_steps": int(n_steps), "method": method}
        return Attribution(
            _untuple(values, is_tuple), _untuple(xs, is_tuple), t, delta, self.name,
            params=params,
        )  # fmt: skip


def _at_baselines(
    model: nn.Module,
    bases: tuple[torch.Tensor, ...],
    n: int,
    rows: int | None,
    args: tuple[Any, ...],
) -> torch.Tensor:
    """The model's output at the baselines ``(n, outputs)``: one row when every baseline is
    one row and no per-sample argument goes with them."""
    per_sample = any(isinstance(a, torch.Tensor) and a.ndim for a in args)
    if not per_sample and all(b.shape[0] == 1 for b in bases):
        return _forward_chunks(model, bases, rows, args).expand(n, -1)
    full = tuple(b.expand(n, *b.shape[1:]) if b.shape[0] == 1 else b for b in bases)
    return _forward_chunks(model, full, rows, args)


_VARIANTS = ("smoothgrad", "smoothgrad_sq", "vargrad")


class SmoothGrad(_Method):
    """SmoothGrad (Smilkov et al. 2017) around any gradient method: its attributions
    averaged over noisy copies of the input (Captum's ``NoiseTunnel``).

    ``SmoothGrad(model)`` smooths the signed gradient; ``SmoothGrad(IntegratedGradients(model))``
    (or any method object taking ``target=``) smooths that method, whose own options
    (``abs=``, ``baselines=``, ``n_steps=``...) go to :meth:`attribute` as keywords.
    ``variant`` (Captum's ``nt_type``): ``"smoothgrad"`` (mean), ``"smoothgrad_sq"`` (mean
    square) or ``"vargrad"`` (variance). Noise is Gaussian with standard deviation
    ``noise_std`` (Captum's ``stdevs``; one per input for tuple inputs) in input units,
    drawn in float32 as Captum draws it: for each chunk of ``nt_samples_batch_size`` noise
    samples, one draw per input tensor of shape ``(batch * samples, ...)``. So with the same
    seed (``seed=`` here, ``torch.manual_seed`` there) and ``nt_samples_batch_size`` the two
    give the same numbers.
    """

    name = "smoothgrad"

    def __init__(self, model: nn.Module | _Method) -> None:
        from netxray.attribution.layer import _NeuronMethod

        if isinstance(model, _Method):
            if isinstance(model, SmoothGrad | _NeuronMethod):
                raise TypeError(
                    f"SmoothGrad cannot wrap {type(model).__name__}; wrap a method that "
                    "takes target=, such as Saliency or IntegratedGradients"
                )
            self.inner: _Method | None = model
            super().__init__(model.model)
        else:
            self.inner = None
            super().__init__(model)

    def __repr__(self) -> str:
        return f"SmoothGrad({self.inner!r})" if self.inner else super().__repr__()

    def attribute(
        self,
        inputs: Inputs,
        *,
        target: Target,
        noise_std: float | tuple[float, ...] = 0.15,
        n_samples: int = 20,
        seed: int | None = None,
        variant: Literal["smoothgrad", "smoothgrad_sq", "vargrad"] = "smoothgrad",
        additional_forward_args: Any = None,
        nt_samples_batch_size: int | None = None,
        internal_batch_size: int | None = None,
        **method_kwargs: Any,
    ) -> Attribution:
        """``values`` shaped like ``inputs``; the target is chosen at the clean input.

        ``nt_samples_batch_size``: noise samples drawn (and attributed) together, as in
        Captum; by default all of them, or as many as keep one draw under 8M elements.
        ``internal_batch_size`` bounds the rows of each forward pass of the wrapped method.
        """
        if variant not in _VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {list(_VARIANTS)}")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
        if method_kwargs and self.inner is None:
            raise TypeError(
                f"unexpected keyword(s) {', '.join(method_kwargs)}: SmoothGrad(model) smooths "
                "the plain gradient; wrap a method (SmoothGrad(Saliency(model))) to pass its options"
            )
        xs, is_tuple, args = self._prepare(inputs, additional_forward_args)
        stds = _noise_stds(noise_std, len(xs))
        n = xs[0].shape[0]
        per_row = sum(x[0].numel() for x in xs)
        if nt_samples_batch_size is None:
            k_max = min(n_samples, max(1, _AUTO_CHUNK_ELEMENTS // max(1, n * per_row)))
        else:
            k_max = min(n_samples, _chunk_rows(nt_samples_batch_size, xs))
            _chunk_rows(n * k_max, xs, n * k_max, "SmoothGrad's nt_samples_batch_size")
        gen = None
        if seed is not None:
            gen = torch.Generator(device=xs[0].device).manual_seed(int(seed))
        model = self.model
        with preserved_state(model):
            # only "pred" needs every output; other targets just need the output width
            needs_all = isinstance(target, str) or any(
                isinstance(a, torch.Tensor) and a.ndim for a in args
            )
            probe = xs if needs_all else tuple(x[:1] for x in xs)
            out = _forward_chunks(model, probe, _chunk_rows(None, xs), args)
            t = _resolve_target(target, out if out.shape[0] == n else out.expand(n, -1))
            total: list[torch.Tensor] | None = None
            total_sq: list[torch.Tensor] | None = None
            done = 0
            while done < n_samples:
                k = min(k_max, n_samples - done)
                noisy = tuple(
                    x.repeat_interleave(k, dim=0)
                    + torch.normal(
                        0.0, s, size=(n * k, *x.shape[1:]), generator=gen,
                        dtype=torch.float32, device=x.device,
                    ).to(x.dtype)
                    for x, s in zip(xs, stds, strict=True)
                )  # fmt: skip
                vals = self._inner(noisy, t.repeat_interleave(k), _interleave(args, k),
                                   n, k, internal_batch_size, method_kwargs)  # fmt: skip
                parts = [v.view(n, k, *v.shape[1:]) for v in vals]
                sums = [p.sum(1) for p in parts]
                total = sums if total is None else [a + b for a, b in zip(total, sums, strict=True)]
                if variant != "smoothgrad":
                    sq = [p.square().sum(1) for p in parts]
                    total_sq = sq if total_sq is None else [
                        a + b for a, b in zip(total_sq, sq, strict=True)
                    ]  # fmt: skip
                done += k
        assert total is not None
        mean = tuple(v / n_samples for v in total)
        if variant == "smoothgrad":
            values = mean
        else:
            assert total_sq is not None
            mean_sq = tuple(v / n_samples for v in total_sq)
            values = (
                mean_sq if variant == "smoothgrad_sq"
                else tuple(q - m * m for q, m in zip(mean_sq, mean, strict=True))
            )  # fmt: skip
        _warn_nonfinite(model, values, self.name)
        params: dict[str, Any] = {
            "noise_std": noise_std if isinstance(noise_std, int | float) else list(stds),
            "n_samples": int(n_samples),
            "seed": seed,
            "variant": variant,
        }
        if self.inner is not None:
            params["method"] = self.inner.name
            params.update({k: v for k, v in method_kwargs.items() if isinstance(v, int | float | str | bool)})
        return Attribution(
            _untuple(values, is_tuple), _untuple(xs, is_tuple), t, None, self.name, params=params
        )

    def _inner(
        self,
        noisy: tuple[torch.Tensor, ...],
        t: torch.Tensor,
        args: tuple[Any, ...],
        n: int,
        k: int,
        internal_batch_size: int | None,
        kwargs: dict[str, Any],
    ) -> tuple[torch.Tensor, ...]:
        """The wrapped method's values at the noisy copies ``(n * k, ...)`` each."""
        if self.inner is None:
            return _gradients(self.model, noisy, args, t, internal_batch_size)[0]
        kw = dict(kwargs)
        if "baselines" in kw:  # per-sample baselines go with their sample's copies
            kw["baselines"] = _expand_baselines(kw["baselines"], noisy, n, k)
        if args:
            kw["additional_forward_args"] = args
        res = self.inner.attribute(
            noisy if len(noisy) > 1 else noisy[0], target=t,
            internal_batch_size=internal_batch_size, **kw,
        )  # fmt: skip
        return res.values if isinstance(res.values, tuple) else (res.values,)


def _noise_stds(noise_std: Any, count: int) -> tuple[float, ...]:
    stds = noise_std if isinstance(noise_std, tuple) else (noise_std,) * count
    if len(stds) != count:
        raise ValueError(
            f"noise_std has {len(stds)} values for {count} input tensor(s); pass one number, "
            "or one per input"
        )
    for s in stds:
        if not (isinstance(s, int | float) and not isinstance(s, bool)
                and math.isfinite(s) and s >= 0):  # fmt: skip
            raise ValueError(f"noise_std must be a finite number >= 0, got {s!r}")
    return tuple(float(s) for s in stds)


def _expand_baselines(b: Any, noisy: tuple[torch.Tensor, ...], n: int, k: int) -> Any:
    """Baselines given one per sample ``(n, ...)`` repeated for each sample's ``k`` copies."""
    if isinstance(b, tuple):
        return tuple(_expand_baselines(v, (x,), n, k) for v, x in zip(b, noisy, strict=False))
    x = noisy[0]
    if isinstance(b, torch.Tensor | np.ndarray) and b.ndim == x.ndim and b.shape[0] == n:
        return torch.as_tensor(b).repeat_interleave(k, dim=0)
    return b
