"""Which inputs (or hidden units) drive a model's output: gradient and perturbation attribution.

One contract for every method: ``Method(model).attribute(inputs, *, target, ...)`` returns an
:class:`Attribution` whose ``values`` are shaped like the inputs (layer methods: like the
layer's output) and whose ``delta`` is the completeness error where the method has one
(integrated gradients), ``None`` otherwise.

``target`` picks the output column to explain: an int, one int per sample (a tensor, array
or list), ``"pred"`` (each sample's predicted class, the argmax of the model's output at
the input) or ``None`` for a model with a single output column.

Why this is fast: Captum differentiates ``torch.unbind(outputs)`` (one autograd root per
sample, about 5.5 us each); we select the target column with ``gather``, sum, and take one
gradient, which gives the same numbers. Methods that evaluate many points per sample
(integrated gradients, SmoothGrad, occlusion, finite differences) stack those points into
one batch and run ONE forward (and backward) pass per chunk of ``internal_batch_size`` rows.

Gradients are taken with ``torch.autograd.grad`` with respect to the inputs only, so the
parameters' ``.grad`` never changes; the model's train/eval flags and ``requires_grad`` are
restored after every call; layer hooks are removed in ``finally``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from netxray._checks import (
    as_input_tensor,
    check_eval_mode,
    check_finite,
    preserved_state,
)
from netxray._results import Result

__all__ = [
    "Attribution",
    "DatasetAttribution",
    "FeatureAblation",
    "FiniteDifference",
    "InputXGradient",
    "IntegratedGradients",
    "LayerGradientXActivation",
    "NeuronGradient",
    "NeuronIntegratedGradients",
    "Occlusion",
    "Saliency",
    "SmoothGrad",
    "METHODS",
    "attribute_dataset",
    "explain",
]

Target = int | str | torch.Tensor | np.ndarray | Sequence[int] | None
Baselines = float | int | torch.Tensor | np.ndarray | None
IGRule = Literal[
    "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"
]

#: Elements (rows x features per sample) one chunk may hold when ``internal_batch_size`` is
#: None: about 32 MiB of float32 inputs. Measured here: bigger chunks are no faster on CPU.
_AUTO_CHUNK_ELEMENTS = 1 << 23


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class Attribution(Result):
    """What one attribution call found.

    ``values``: ``(batch, ...)`` shaped like the inputs (layer methods: like the layer's
    output). ``inputs``: the inputs explained ``(batch, ...)``. ``target``: ``(batch,)`` the
    output column explained per sample (``None`` for neuron methods, which explain a hidden
    unit: see ``params["unit"]``). ``delta``: ``(batch,)`` completeness error
    ``sum(values) - (F(x) - F(baseline))`` for integrated-gradient methods, else ``None``.
    """

    values: torch.Tensor
    inputs: torch.Tensor
    target: torch.Tensor | None
    delta: torch.Tensor | None
    method: str
    layer: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True, eq=False)
class DatasetAttribution(Result):
    """Attribution summed up over a whole dataset, computed batch by batch.

    ``mean_abs``: ``(*features)`` mean |attribution| per feature over every sample;
    ``mean``: the signed mean; ``class_mean_abs``: ``(n_classes, *features)`` the same per
    class (zeros for a class with no sample: see ``class_counts``). ``grouped_by`` is
    ``"label"`` (true labels were given) or ``"pred"`` (the model's predicted class).
    """

    mean_abs: torch.Tensor
    mean: torch.Tensor
    class_mean_abs: torch.Tensor
    class_counts: torch.Tensor
    n_samples: int
    method: str
    grouped_by: str
    target: str
    layer: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return int(self.class_counts.shape[0])

    def ranking(self) -> list[int]:
        """Flat feature indices, most important (largest mean |attribution|) first."""
        return [int(i) for i in torch.argsort(self.mean_abs.flatten(), descending=True)]


# --------------------------------------------------------------------------- helpers


_SHAPE_WORDS = ("shape", "size", "dimension", "mat1", "mat2", "expected input", "Expected")


def _run(fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
    """Call the model; turn a shape mismatch into a ValueError that says what was passed."""
    try:
        return fn(x)
    except RuntimeError as e:
        if any(w in str(e) for w in _SHAPE_WORDS):
            raise ValueError(
                f"the model cannot take inputs of shape {tuple(x.shape)} ({e}); pass inputs "
                "shaped (batch, ...) like the data the model was built for"
            ) from e
        raise


def _as_2d(out: Any, rows: int) -> torch.Tensor:
    """The model's output as ``(rows, outputs)``; a ``(rows,)`` output is one column."""
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"the model returned a {type(out).__name__}, not a tensor; wrap it so it returns "
            "one (batch, outputs) tensor"
        )
    if out.ndim == 1:
        out = out.unsqueeze(1)
    if out.ndim != 2 or out.shape[0] != rows:
        raise ValueError(
            f"the model's output has shape {tuple(out.shape)}; attribution needs (batch, outputs) "
            f"with batch = {rows}. Flatten or select the output you want to explain first"
        )
    return out


def _resolve_target(target: Target, out: torch.Tensor) -> torch.Tensor:
    """``target`` as ``(batch,)`` int64 column indices on ``out``'s device, checked in range."""
    n, k = out.shape
    if isinstance(target, str):
        if target != "pred":
            raise ValueError(f"target must be an int, one int per sample or 'pred', got {target!r}")
        return out.detach().argmax(1)
    if target is None:
        if k != 1:
            raise ValueError(
                f"the model has {k} outputs per sample: pass target= an output index, one per "
                "sample, or 'pred' for the predicted class"
            )
        return torch.zeros(n, dtype=torch.long, device=out.device)
    if isinstance(target, bool):
        raise TypeError("target must be an int, one int per sample or 'pred', not a bool")
    if isinstance(target, int | np.integer):
        t = int(target)
        if not 0 <= t < k:
            raise ValueError(f"target {t} is out of range: the model has {k} outputs (0..{k - 1})")
        return torch.full((n,), t, dtype=torch.long, device=out.device)
    tt = torch.as_tensor(np.asarray(target) if not isinstance(target, torch.Tensor) else target)
    if tt.is_floating_point() or tt.is_complex() or tt.dtype == torch.bool:
        raise TypeError(f"target must hold integers, got dtype {tt.dtype}")
    tt = tt.reshape(-1) if tt.ndim == 2 and tt.shape[1] == 1 else tt
    if tt.ndim != 1 or tt.shape[0] != n:
        raise ValueError(
            f"target has shape {tuple(tt.shape)}; pass one int per sample, shape ({n},)"
        )
    tt = tt.to(device=out.device, dtype=torch.long)
    lo, hi = (int(v) for v in torch.aminmax(tt)) if n else (0, 0)
    if lo < 0 or hi >= k:
        bad = int(tt[(tt < 0) | (tt >= k)][0])
        raise ValueError(f"target {bad} is out of range: the model has {k} outputs (0..{k - 1})")
    return tt


def _select(out: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``out[i, t[i]]`` for every row: ``(rows,)``."""
    return out.gather(1, t.unsqueeze(1)).squeeze(1)


def _float_inputs(inputs: Any, model: nn.Module, method: str) -> torch.Tensor:
    """Inputs on the model's device and dtype, checked non-empty, finite and floating."""
    x = as_input_tensor(inputs, model, "inputs")
    if not x.is_floating_point():
        raise ValueError(
            f"{method} needs floating-point inputs, got {x.dtype}; convert them with .float() "
            "(for token ids, attribute to an embedding layer instead)"
        )
    return x


def _chunk_rows(internal_batch_size: int | None, x: torch.Tensor) -> int | None:
    """Rows per forward pass: the user's bound, else a size-based default."""
    if internal_batch_size is None:
        per_row = max(1, x[0].numel())
        return max(1, _AUTO_CHUNK_ELEMENTS // per_row)
    if isinstance(internal_batch_size, bool) or int(internal_batch_size) < 1:
        raise ValueError(f"internal_batch_size must be a positive int, got {internal_batch_size}")
    return int(internal_batch_size)


def _plan(n: int, points: int, rows: int | None) -> Iterator[tuple[slice, slice]]:
    """Split ``n`` samples x ``points`` evaluations per sample into chunks of <= ``rows`` rows.

    Samples are kept whole (all their points in one chunk) when ``points <= rows``, so each
    chunk's reduction over points completes inside the chunk.
    """
    if rows is None or n * points <= rows:
        yield slice(0, n), slice(0, points)
    elif points <= rows:
        b = rows // points
        for s in range(0, n, b):
            yield slice(s, min(s + b, n)), slice(0, points)
    else:
        for s in range(n):
            for q in range(0, points, rows):
                yield slice(s, s + 1), slice(q, min(q + rows, points))


def _forward_chunks(
    fn: Callable[[torch.Tensor], Any], x: torch.Tensor, rows: int | None
) -> torch.Tensor:
    """``fn(x)`` as ``(batch, outputs)`` under no_grad, ``rows`` at a time."""
    with torch.no_grad():
        if rows is None or x.shape[0] <= rows:
            return _as_2d(_run(fn, x), x.shape[0])
        return torch.cat(
            [
                _as_2d(_run(fn, x[s : s + rows]), min(rows, x.shape[0] - s))
                for s in range(0, x.shape[0], rows)
            ]
        )


def _target_grad(
    model: nn.Module, x: torch.Tensor, target: Target, checked: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient of the selected output w.r.t. ``x`` ``(rows, ...)`` and the targets used.

    ``checked``: ``target`` is already a resolved ``(rows,)`` int64 tensor (internal calls).
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        out = _as_2d(_run(model, xg), x.shape[0])
        t = target if checked else _resolve_target(target, out)  # type: ignore[assignment]
        sel = out.gather(1, t.unsqueeze(1)).sum()
        if not sel.requires_grad:
            raise ValueError(
                "the model's output does not depend on its inputs through autograd (was it run "
                "under torch.no_grad, or detached?); use FiniteDifference for such a model"
            )
        (g,) = torch.autograd.grad(sel, xg, allow_unused=True)
    return (torch.zeros_like(x) if g is None else g), t


def _baselines(baselines: Baselines, x: torch.Tensor) -> torch.Tensor:
    """Baselines broadcastable to ``x``: ``(batch, ...)`` or ``(1, ...)``."""
    if baselines is None:
        return torch.zeros((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
    if isinstance(baselines, bool):
        raise TypeError("baselines must be a number or a tensor, not a bool")
    if isinstance(baselines, int | float):
        if not math.isfinite(baselines):
            raise ValueError(f"baselines must be finite, got {baselines}")
        return torch.full((1, *x.shape[1:]), float(baselines), dtype=x.dtype, device=x.device)
    if isinstance(baselines, str):
        raise ValueError(
            f"baselines={baselines!r} is not supported; pass a tensor, e.g. the data mean "
            "X_train.mean(0), or a number"
        )
    b = torch.as_tensor(baselines).to(device=x.device, dtype=x.dtype)
    check_finite(b, "baselines")
    if tuple(b.shape) == tuple(x.shape[1:]):
        return b.unsqueeze(0)
    if (
        b.ndim == x.ndim
        and b.shape[0] in (1, x.shape[0])
        and tuple(b.shape[1:]) == tuple(x.shape[1:])
    ):
        return b
    raise ValueError(
        f"baselines have shape {tuple(b.shape)}; pass one sample's shape {tuple(x.shape[1:])}, "
        f"the inputs' shape {tuple(x.shape)}, or a number"
    )


def _rows(b: torch.Tensor, sl: slice) -> torch.Tensor:
    """The rows of a broadcastable ``(1 | batch, ...)`` tensor for samples ``sl``."""
    return b if b.shape[0] == 1 else b[sl]


def _ig_rule(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points ``alphas`` in [0, 1] and weights for integrating over the straight path."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
    n = int(n_steps)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(n)
        return 0.5 * (nodes + 1.0), 0.5 * weights
    if method == "riemann_left":
        return np.arange(n) / n, np.full(n, 1.0 / n)
    if method == "riemann_right":
        return np.arange(1, n + 1) / n, np.full(n, 1.0 / n)
    if method == "riemann_middle":
        return (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        if n < 2:
            raise ValueError("riemann_trapezoid needs n_steps >= 2")
        w = np.full(n, 1.0 / (n - 1))
        w[0] = w[-1] = 0.5 / (n - 1)
        return np.linspace(0.0, 1.0, n), w
    raise ValueError(
        f"unknown integration method {method!r}; choose gausslegendre, riemann_left, "
        "riemann_right, riemann_middle or riemann_trapezoid"
    )


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; for a plain "
            "function (e.g. NumPy), use FiniteDifference"
        )
    return model


# --------------------------------------------------------------------------- gradient methods


class _Method:
    """Shared plumbing: the model, its checks, and the result object."""

    name = "method"

    def __init__(self, model: nn.Module) -> None:
        self.model = _check_model(model)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__})"

    def _inputs(self, inputs: Any) -> torch.Tensor:
        check_eval_mode(self.model)
        return _float_inputs(inputs, self.model, self.name)

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample ``(batch,)`` (used to group dataset attributions)."""
        with preserved_state(self.model):
            return _forward_chunks(self.model, x, _chunk_rows(None, x)).argmax(1)


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


def _integrate(
    grad_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    base: torch.Tensor,
    t: torch.Tensor,
    alphas: np.ndarray,
    weights: np.ndarray,
    rows: int | None,
) -> torch.Tensor:
    """(x - base) * sum_k w_k grad(base + a_k (x - base)), one forward+backward per chunk."""
    n, shape = x.shape[0], x.shape[1:]
    a_all = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
    w_all = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    total = torch.zeros_like(x)
    ones = (1,) * len(shape)
    for sl, pl in _plan(n, len(alphas), rows):
        xb, bb, tb = x[sl], _rows(base, sl), t[sl]
        b = xb.shape[0]
        a, w = a_all[pl], w_all[pl]
        k = a.shape[0]
        diff = xb - bb
        # base + a_k * diff for every step k, in one fused pass: (k, b, ...) -> (k * b, ...)
        scaled = torch.addcmul(bb.unsqueeze(0), a.view(k, 1, *ones), diff.unsqueeze(0))
        scaled = scaled.reshape(k * b, *shape)
        g = grad_fn(scaled, tb.repeat(k))
        total[sl] += (w @ g.reshape(k, -1)).view(b, *shape)
    return total * (x - base)


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


# --------------------------------------------------------------------------- perturbation


class _Perturbation(_Method):
    """Replace groups of features by a baseline and measure how the target output drops."""

    def _ablate(
        self,
        x: torch.Tensor,
        target: Target,
        n_masks: int,
        masks: Callable[[int, int], torch.Tensor],
        baselines: Baselines,
        internal_batch_size: int | None,
        counts: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``masks(start, stop)``: masks ``start..stop-1`` as ``(k, *sample)`` bool, built
        per chunk so memory stays bounded however many there are. Each element's value is
        the sum over the masks covering it of ``F(x) - F(x with the mask at baseline)``,
        divided by ``counts`` (how many masks cover each element) when given."""
        n, shape = x.shape[0], x.shape[1:]
        base = _baselines(baselines, x)
        rows = _chunk_rows(internal_batch_size, x)
        d = math.prod(shape)
        cache = masks(0, n_masks) if n_masks * d <= _AUTO_CHUNK_ELEMENTS else None
        model = self.model
        values = torch.zeros((n, d), dtype=x.dtype, device=x.device)
        with preserved_state(model), torch.no_grad():
            f_x = _forward_chunks(model, x, rows)
            t = _resolve_target(target, f_x)
            init = _select(f_x, t)
            for sl, pl in _plan(n, n_masks, rows):
                xb, bb = x[sl], _rows(base, sl)
                b, k = xb.shape[0], pl.stop - pl.start
                mk = cache[pl] if cache is not None else masks(pl.start, pl.stop)
                ablated = torch.where(mk.unsqueeze(0), bb.unsqueeze(1), xb.unsqueeze(1))
                out = _as_2d(_run(model, ablated.reshape(b * k, *shape)), b * k)
                diff = init[sl].unsqueeze(1) - _select(out, t[sl].repeat_interleave(k)).view(b, k)
                values[sl] += diff @ mk.reshape(k, d).to(x.dtype)
        if counts is not None:
            values = values / counts.reshape(1, d).to(x.dtype).clamp(min=1)
        return values.view(n, *shape), t


def _window(
    arg: int | Sequence[int], shape: tuple[int, ...], what: str, lead: Sequence[int] | None = None
) -> tuple[int, ...]:
    """An int applies to the last two dims (one for 1-D samples); a tuple to the last dims;
    leading dims (e.g. channels) take ``lead`` (default: the whole dim)."""
    if isinstance(arg, int | np.integer) and not isinstance(arg, bool):
        k = min(2, len(shape))
        tail = (int(arg),) * k
    else:
        tail = tuple(int(a) for a in arg)
    if len(tail) > len(shape):
        raise ValueError(
            f"{what} {tuple(tail)} has more dimensions than one sample {shape}; pass at most "
            f"{len(shape)} sizes"
        )
    lead = shape if lead is None else lead
    full = tuple(lead[: len(shape) - len(tail)]) + tail
    if any(w < 1 for w in full):
        raise ValueError(f"{what} sizes must be >= 1, got {tail}")
    return full


class Occlusion(_Perturbation):
    """Slide a window over the input, set it to a baseline, and record the output drop
    (Zeiler & Fergus 2014). Each element gets the mean drop over the windows covering it.

    Windows start every ``stride`` along each dim and are cut at the edge (as Captum's),
    so every element is covered.
    """

    name = "occlusion"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        window: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        baselines: Baselines = None,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``window``/``stride``: an int for the last two dims (images ``(C, H, W)``: every
        channel at once) or sizes for the last dims; ``stride`` defaults to ``window``
        (non-overlapping). ``values`` ``(batch, ...)``."""
        x = self._inputs(inputs)
        shape = tuple(x.shape[1:])
        win = _window(window, shape, "window")
        std = win if stride is None else _window(stride, shape, "stride", lead=win)
        for w, st, d in zip(win, std, shape, strict=True):
            if w > d:
                raise ValueError(f"window {win} is larger than one sample {shape}")
            if st > w and w < d:
                raise ValueError(f"stride {std} larger than window {win} would skip elements")
        # window starts: 0, s, 2s, ... while the previous window ends before the edge
        starts = [
            list(range(0, d - w + st, st)) if d > w else [0]
            for w, st, d in zip(win, std, shape, strict=True)
        ]
        n_per_dim = [len(r) for r in starts]

        def masks(i0: int, i1: int) -> torch.Tensor:
            m = torch.zeros((i1 - i0, *shape), dtype=torch.bool, device=x.device)
            for j, i in enumerate(range(i0, i1)):
                pos = np.unravel_index(i, n_per_dim)
                idx = tuple(
                    slice(starts[dim][p], starts[dim][p] + win[dim]) for dim, p in enumerate(pos)
                )
                m[(j, *idx)] = True
            return m

        # windows covering each element: a product over dims of per-dim coverage counts
        counts = torch.ones(shape, dtype=torch.long, device=x.device)
        for dim, (w, d) in enumerate(zip(win, shape, strict=True)):
            cover = torch.zeros(d, dtype=torch.long, device=x.device)
            for p in starts[dim]:
                cover[p : p + w] += 1
            counts = counts * cover.view(*([1] * dim), d, *([1] * (len(shape) - dim - 1)))
        values, t = self._ablate(
            x, target, math.prod(n_per_dim), masks, baselines, internal_batch_size, counts
        )
        params = {"window": list(win), "stride": list(std)}
        return Attribution(values, x, t, None, self.name, params=params)


class FeatureAblation(_Perturbation):
    """Set each feature (or each group of features) to a baseline and record the output drop.

    ``feature_mask`` ``(...)`` shaped like one sample gives each element a group id (e.g.
    columns that belong together, or superpixels); every element of a group gets the
    group's drop. Without it every element is its own group.
    """

    name = "feature_ablation"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        feature_mask: torch.Tensor | np.ndarray | None = None,
        baselines: Baselines = None,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``: F(x) - F(x with the element's group at baseline)."""
        x = self._inputs(inputs)
        shape = tuple(x.shape[1:])
        d = math.prod(shape)
        if feature_mask is None:
            ids = torch.arange(d, device=x.device)
            fm = ids.view(shape)
        else:
            fm = torch.as_tensor(feature_mask)
            if fm.ndim == len(shape) + 1 and fm.shape[0] == 1:
                fm = fm[0]
            if tuple(fm.shape) != shape:
                raise ValueError(
                    f"feature_mask has shape {tuple(fm.shape)}; pass one group id per element "
                    f"of a sample, shape {shape}"
                )
            if fm.is_floating_point() or fm.dtype == torch.bool:
                raise TypeError(f"feature_mask must hold integer group ids, got {fm.dtype}")
            fm = fm.to(x.device)
            ids = torch.unique(fm)

        def masks(i0: int, i1: int) -> torch.Tensor:
            return fm.unsqueeze(0) == ids[i0:i1].view(-1, *([1] * len(shape)))

        values, t = self._ablate(
            x, target, int(ids.shape[0]), masks, baselines, internal_batch_size, None
        )
        n_groups = int(ids.shape[0])
        return Attribution(values, x, t, None, self.name, params={"n_groups": n_groups})


class FiniteDifference:
    """Central finite differences of any function: ``(f(x + eps e_i) - f(x - eps e_i)) / 2eps``.

    Model-agnostic: ``fn`` may be an ``nn.Module`` or any callable taking a NumPy array
    ``(rows, ...)`` and returning ``(rows, outputs)`` (e.g. probabilities from a NumPy MLP).
    It costs two evaluations per input element, batched ``internal_batch_size`` rows at a
    time, so it suits tabular data or small images.
    """

    name = "finite_difference"

    def __init__(self, fn: nn.Module | Callable[[np.ndarray], Any], *, eps: float = 1e-3) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be callable (a model or a function), got {type(fn).__name__}")
        if not (isinstance(eps, int | float) and math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps must be a positive finite number, got {eps!r}")
        self.fn = fn
        self.eps = float(eps)
        self.model = fn if isinstance(fn, nn.Module) else None

    def __repr__(self) -> str:
        return f"FiniteDifference({getattr(self.fn, '__name__', type(self.fn).__name__)}, eps={self.eps})"

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        if self.model is not None:
            return _run(self.model, x)
        out = self.fn(x.detach().cpu().numpy())
        arr = np.asarray(out)
        if not np.issubdtype(arr.dtype, np.number):
            raise ValueError(f"fn returned {arr.dtype} values; it must return numbers")
        return torch.from_numpy(np.ascontiguousarray(arr)).to(x.device)

    def _prepare(self, inputs: Any) -> torch.Tensor:
        if self.model is not None:
            check_eval_mode(self.model)
            return _float_inputs(inputs, self.model, self.name)
        x = (
            torch.from_numpy(np.ascontiguousarray(inputs))
            if isinstance(inputs, np.ndarray)
            else inputs
        )
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(inputs, dtype=np.float64))
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(
                f"inputs must be (batch, ...) with at least one sample, got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            x = x.to(torch.float64)
        check_finite(x, "inputs")
        return x

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return self._outputs(x).argmax(1)

    def _outputs(self, x: torch.Tensor) -> torch.Tensor:
        if self.model is not None:
            with preserved_state(self.model):
                return _forward_chunks(self.model, x, _chunk_rows(None, x))
        return _as_2d(self._call(x), x.shape[0])

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``: the signed slope of output[target] along each element."""
        x = self._prepare(inputs)
        n, shape = x.shape[0], tuple(x.shape[1:])
        d = math.prod(shape)
        rows = _chunk_rows(internal_batch_size, x)
        eps = self.eps
        values = torch.empty((n, d), dtype=x.dtype, device=x.device)
        ctx = preserved_state(self.model) if self.model is not None else contextlib.nullcontext()
        with ctx, torch.no_grad():
            t = _resolve_target(target, self._outputs(x))
            flat = x.reshape(n, d)
            # two rows per element (+eps, -eps); rows are ordered (sample, element, sign)
            half = None if rows is None else max(1, rows // 2)
            for sl, pl in _plan(n, d, half):
                j0, j1 = pl.start, pl.stop
                k = j1 - j0
                xb = flat[sl]
                b = xb.shape[0]
                pts = xb[:, None, None, :].repeat(1, k, 2, 1)
                cols = torch.arange(j0, j1, device=x.device)
                ar = torch.arange(k, device=x.device)
                pts[:, ar, 0, cols] += eps
                pts[:, ar, 1, cols] -= eps
                out = _as_2d(self._call(pts.reshape(b * k * 2, *shape)), b * k * 2)
                sel = _select(out, t[sl].repeat_interleave(2 * k)).view(b, k, 2)
                values[sl, j0:j1] = ((sel[..., 0] - sel[..., 1]) / (2 * eps)).to(x.dtype)
        return Attribution(values.view(n, *shape), x, t, None, self.name, params={"eps": eps})


# --------------------------------------------------------------------------- hidden units


class _StopForward(Exception):
    """Raised by our hook to end a forward pass once the layer we need has run."""


def _resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer and name:
                return name, m
        raise ValueError("the layer module given is not a submodule of the model; pass its name")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a dotted name or a submodule, got {type(layer).__name__}")
    from netxray.capture import select_layers

    chosen = select_layers(model, layer)
    if len(chosen) != 1:
        raise ValueError(
            f"layer {layer!r} matches {len(chosen)} layers ({', '.join(chosen)}); name exactly one"
        )
    return next(iter(chosen.items()))


def _layer_forward(
    model: nn.Module, module: nn.Module, name: str, x: torch.Tensor, *, stop: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the model with a hook on ``module``: ``(layer output, model output or None)``.

    With ``stop`` the forward pass ends right after the layer (its output is all we need).
    """
    from netxray.capture import first_tensor

    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, _i: Any, output: Any) -> None:
        t = first_tensor(output)
        if t is not None:
            seen.append(t)
        if stop:
            raise _StopForward

    handle = module.register_forward_hook(hook)
    out = None
    try:
        try:
            out = _run(model, x)
        except _StopForward:
            pass
    finally:
        handle.remove()
    if not seen:
        raise ValueError(f"layer {name!r} did not run (or output no tensor) in the forward pass")
    if len(seen) > 1:
        raise ValueError(
            f"layer {name!r} ran {len(seen)} times in one forward pass; attribute to a layer "
            "that runs once"
        )
    return seen[0], out


class _LayerMethod(_Method):
    def __init__(self, model: nn.Module, layer: str | nn.Module) -> None:
        super().__init__(model)
        self.layer, self.module = _resolve_layer(self.model, layer)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, layer={self.layer!r})"


def _unit_index(
    unit: int | Sequence[int], act_shape: tuple[int, ...], layer: str
) -> tuple[int, ...]:
    """``unit`` as an index into one sample's layer output ``act_shape``, checked in range."""
    idx = (
        (int(unit),)
        if isinstance(unit, int | np.integer) and not isinstance(unit, bool)
        else tuple(int(u) for u in unit)
    )
    if len(idx) != len(act_shape):
        raise ValueError(
            f"unit {unit!r} does not index layer {layer!r}'s output of shape {act_shape} per "
            f"sample; pass {len(act_shape)} index(es)"
            + (", e.g. (channel, row, col)" if len(act_shape) == 3 else "")
        )
    for i, d in zip(idx, act_shape, strict=True):
        if not 0 <= i < d:
            raise ValueError(
                f"unit {unit!r} is out of range for layer {layer!r}'s output {act_shape}"
            )
    return idx


class _NeuronMethod(_LayerMethod):
    def _unit_grad(
        self, x: torch.Tensor, idx: tuple[int, ...] | None, unit: Any
    ) -> tuple[torch.Tensor, tuple[int, ...]]:
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            act, _ = _layer_forward(self.model, self.module, self.layer, xg, stop=True)
            if idx is None:
                idx = _unit_index(unit, tuple(act.shape[1:]), self.layer)
            sel = act[(slice(None), *idx)].sum()
            if not sel.requires_grad:
                raise ValueError(f"layer {self.layer!r}'s output does not depend on the inputs")
            (g,) = torch.autograd.grad(sel, xg, allow_unused=True)
        return (torch.zeros_like(x) if g is None else g), idx

    def _unit_values(self, x: torch.Tensor, idx: tuple[int, ...], rows: int | None) -> torch.Tensor:
        outs = []
        step = x.shape[0] if rows is None else rows
        with torch.no_grad():
            for s in range(0, x.shape[0], step):
                act, _ = _layer_forward(
                    self.model, self.module, self.layer, x[s : s + step], stop=True
                )
                outs.append(act[(slice(None), *idx)])
        return torch.cat(outs)


class NeuronGradient(_NeuronMethod):
    """Which inputs drive hidden unit ``unit`` of ``layer``: d activation / d input.

    The forward pass stops at the layer, so it costs only the layers up to it.
    """

    name = "neuron_gradient"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        unit: int | Sequence[int],
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``unit``: an int for a ``(batch, units)`` layer, or a tuple such as
        ``(channel, row, col)`` for a conv layer. ``values`` ``(batch, ...)`` like the inputs."""
        x = self._inputs(inputs)
        rows = x.shape[0] if internal_batch_size is None else _chunk_rows(internal_batch_size, x)
        grads = []
        idx = None
        with preserved_state(self.model):
            for s in range(0, x.shape[0], rows):
                g, idx = self._unit_grad(x[s : s + rows], idx, unit)
                grads.append(g)
        assert idx is not None
        return Attribution(
            torch.cat(grads), x, None, None, self.name, layer=self.layer, params={"unit": list(idx)}
        )


class NeuronIntegratedGradients(_NeuronMethod):
    """Integrated gradients of hidden unit ``unit`` of ``layer`` w.r.t. the inputs; ``delta``
    is ``sum(values) - (unit(x) - unit(baseline))``."""

    name = "neuron_integrated_gradients"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        unit: int | Sequence[int],
        baselines: Baselines = None,
        n_steps: int = 50,
        method: IGRule = "gausslegendre",
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """As :meth:`IntegratedGradients.attribute`, for a hidden unit instead of an output."""
        x = self._inputs(inputs)
        base = _baselines(baselines, x)
        alphas, weights = _ig_rule(method, n_steps)
        rows = _chunk_rows(internal_batch_size, x)
        with preserved_state(self.model):
            with torch.no_grad():
                act, _ = _layer_forward(self.model, self.module, self.layer, x[:1], stop=True)
            idx = _unit_index(unit, tuple(act.shape[1:]), self.layer)
            t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            values = _integrate(
                lambda xs, _ts: self._unit_grad(xs, idx, unit)[0], x, base, t, alphas, weights, rows
            )
            u_x = self._unit_values(x, idx, rows)
            u_b = self._unit_values(base, idx, rows)
            u_b = u_b.expand(x.shape[0]) if u_b.shape[0] == 1 else u_b
            delta = values.flatten(1).sum(1) - (u_x - u_b)
        params = {"unit": list(idx), "n_steps": int(n_steps), "method": method}
        return Attribution(values, x, None, delta, self.name, layer=self.layer, params=params)


class LayerGradientXActivation(_LayerMethod):
    """Which units of ``layer`` drive the output: activation x d output[target] / d activation,
    per unit. ``values`` are shaped like the layer's output ``(batch, ...)``."""

    name = "layer_gradient_x_activation"

    def attribute(
        self,
        inputs: torch.Tensor | np.ndarray,
        *,
        target: Target,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, *layer_output)``; summed over units it is a first-order
        estimate of the target output (exact for a ReLU net without biases after the layer)."""
        x = self._inputs(inputs)
        rows = x.shape[0] if internal_batch_size is None else _chunk_rows(internal_batch_size, x)
        vals, ts = [], []
        t_all = None
        if not (isinstance(target, str | int | np.integer) or target is None):
            t_all = torch.as_tensor(target)
            if t_all.ndim != 1 or t_all.shape[0] != x.shape[0]:
                raise ValueError(
                    f"target has shape {tuple(t_all.shape)}; pass one int per sample, shape ({x.shape[0]},)"
                )
        with preserved_state(self.model), torch.enable_grad():
            for s in range(0, x.shape[0], rows):
                xb = x[s : s + rows].detach().requires_grad_(True)  # so a frozen model has a graph
                act, out = _layer_forward(self.model, self.module, self.layer, xb, stop=False)
                out2 = _as_2d(out, xb.shape[0])
                t = _resolve_target(target if t_all is None else t_all[s : s + rows], out2)
                sel = out2.gather(1, t.unsqueeze(1)).sum()
                if not (sel.requires_grad and act.requires_grad):
                    raise ValueError(
                        f"the output does not depend on layer {self.layer!r} through autograd"
                    )
                (g,) = torch.autograd.grad(sel, act, allow_unused=True)
                g = torch.zeros_like(act) if g is None else g
                vals.append((g * act).detach())
                ts.append(t)
        return Attribution(torch.cat(vals), x, torch.cat(ts), None, self.name, layer=self.layer)


# --------------------------------------------------------------------------- by name

#: Output-attribution methods by the names the CLI and reports use.
METHODS: dict[str, type[_Method] | type[FiniteDifference]] = {
    "saliency": Saliency,
    "input_x_gradient": InputXGradient,
    "integrated_gradients": IntegratedGradients,
    "smoothgrad": SmoothGrad,
    "occlusion": Occlusion,
    "feature_ablation": FeatureAblation,
    "finite_difference": FiniteDifference,
}


def explain(
    model: nn.Module,
    inputs: torch.Tensor | np.ndarray,
    *,
    method: str = "integrated_gradients",
    target: Target = "pred",
    **kwargs: Any,
) -> Attribution:
    """``METHODS[method](model).attribute(inputs, target=target, **kwargs)``: one call for
    the CLI and notebooks. ``method`` is one of :data:`METHODS`' names."""
    cls = METHODS.get(method)
    if cls is None:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return cls(model).attribute(inputs, target=target, **kwargs)


# --------------------------------------------------------------------------- whole datasets

AnyMethod = _Method | FiniteDifference


def attribute_dataset(
    method: AnyMethod,
    data: Any,
    *,
    target: int | Literal["pred", "label"] = "pred",
    batch_size: int = 1024,
    n_classes: int | None = None,
    **kwargs: Any,
) -> DatasetAttribution:
    """Mean |attribution| per feature over a whole dataset, overall and per class.

    ``data``: a tensor/array, an ``(X, y)`` pair, a DataLoader or any iterable of batches.
    ``target``: ``"pred"`` (explain each sample's predicted class), ``"label"`` (its true
    label; needs y) or an int. Samples are grouped by their true label when ``data`` has
    labels, else by the predicted class. Batches are attributed and reduced one at a time,
    so memory does not grow with the dataset. ``kwargs`` go to ``method.attribute`` (e.g.
    ``n_steps=``, or ``unit=`` for neuron methods, which take no target).
    """
    from netxray.capture import iter_batches

    if not isinstance(method, _Method | FiniteDifference):
        raise TypeError(f"method must be an attribution method object, got {type(method).__name__}")
    if isinstance(target, str) and target not in ("pred", "label"):
        raise ValueError(f"target must be 'pred', 'label' or an int, got {target!r}")
    if not isinstance(target, str | int | np.integer) or isinstance(target, bool):
        raise TypeError(
            "attribute_dataset takes target='pred', 'label' or one int for every sample"
        )
    if n_classes is not None and n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    neuron = isinstance(method, _NeuronMethod)
    sum_abs = sum_signed = class_sum = None
    counts = torch.zeros(n_classes or 0, dtype=torch.long)
    total = 0
    grouped_by = None
    first: tuple[str, str | None, dict[str, Any], torch.dtype] | None = None
    for xb, yb in iter_batches(data, batch_size):
        if yb is not None and (yb.ndim != 1 or yb.is_floating_point()):
            raise ValueError(
                f"labels must be integer class ids shaped (batch,), got {yb.dtype} {tuple(yb.shape)}"
            )
        if target == "label" and yb is None:
            raise ValueError("target='label' needs labels: pass (X, y) or a loader yielding (x, y)")
        this = "label" if yb is not None else "pred"
        if grouped_by is not None and this != grouped_by:
            raise ValueError(
                "some batches have labels and some do not; pass labels for all or none"
            )
        grouped_by = this
        if neuron:
            attr = method.attribute(xb, **kwargs)
        else:
            t = yb if target == "label" else target
            attr = method.attribute(xb, target=t, **kwargs)
        if first is None:  # keep what describes the run, not the batch's tensors
            first = (attr.method, attr.layer, dict(attr.params), attr.values.dtype)
        if yb is not None:
            groups = yb.to(torch.long)
        elif attr.target is not None and target == "pred":
            groups = attr.target
        else:
            groups = method._predict(attr.inputs)
        groups = groups.detach().cpu()
        if int(groups.min()) < 0:
            raise ValueError(f"class labels must be >= 0, got {int(groups.min())}")
        top = int(groups.max()) + 1
        if n_classes is not None and top > n_classes:
            raise ValueError(f"class {top - 1} found but n_classes={n_classes}; raise n_classes")
        v = attr.values.detach()
        a = v.abs().flatten(1)
        if sum_abs is None:
            feat = tuple(v.shape[1:])
            sum_abs = torch.zeros(a.shape[1], dtype=torch.float64, device=v.device)
            sum_signed = torch.zeros_like(sum_abs)
            class_sum = torch.zeros(
                (max(n_classes or 0, top), a.shape[1]), dtype=torch.float64, device=v.device
            )
        elif a.shape[1] != sum_abs.shape[0]:
            raise ValueError("batches differ in sample shape; pass samples of one shape")
        if top > class_sum.shape[0]:
            grow = torch.zeros(
                (top - class_sum.shape[0], a.shape[1]),
                dtype=class_sum.dtype,
                device=class_sum.device,
            )
            class_sum = torch.cat([class_sum, grow])
        if top > counts.shape[0]:
            counts = torch.cat([counts, torch.zeros(top - counts.shape[0], dtype=torch.long)])
        sum_abs += a.sum(0).double()
        sum_signed += v.flatten(1).sum(0).double()
        class_sum.index_add_(0, groups.to(v.device), a.double())
        counts += torch.bincount(groups, minlength=counts.shape[0])
        total += v.shape[0]
    assert (
        sum_abs is not None
        and sum_signed is not None
        and class_sum is not None
        and first is not None
    )
    method_name, layer, first_params, dtype = first
    mean_abs = (sum_abs / total).to(dtype).cpu().view(feat)
    mean = (sum_signed / total).to(dtype).cpu().view(feat)
    per_class = (class_sum.cpu() / counts.clamp(min=1).unsqueeze(1).double()).to(dtype)
    params = first_params
    params.update({k: v for k, v in kwargs.items() if isinstance(v, int | float | str | bool)})
    return DatasetAttribution(
        mean_abs=mean_abs,
        mean=mean,
        class_mean_abs=per_class.view(-1, *feat),
        class_counts=counts,
        n_samples=total,
        method=method_name,
        grouped_by=str(grouped_by),
        target=str(target) if not neuron else "unit",
        layer=layer,
        params=params,
    )
