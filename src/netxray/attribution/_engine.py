"""The machinery every attribution method shares: targets, chunks, gradients, baselines.

Why this is fast: Captum differentiates ``torch.unbind(outputs)`` (one autograd root per
sample, about 5.5 us each); we select the target column with ``gather``, sum, and take one
gradient (:func:`_target_grad`), which gives the same numbers. Methods that evaluate many
points per sample (integrated gradients, SmoothGrad, occlusion, finite differences) stack
those points into one batch and run ONE forward (and backward) pass per chunk of
``internal_batch_size`` rows (:func:`_plan` splits the work into chunks).

Gradients are taken with ``torch.autograd.grad`` with respect to the inputs only, so the
parameters' ``.grad`` never changes; the model's train/eval flags and ``requires_grad`` are
restored after every call (``preserved_state``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
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

Target = int | str | torch.Tensor | np.ndarray | Sequence[int] | None
Baselines = float | int | torch.Tensor | np.ndarray | None
IGRule = Literal[
    "gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"
]

#: Elements (rows x features per sample) one chunk may hold when ``internal_batch_size`` is
#: None: about 32 MiB of float32 inputs. Measured here: bigger chunks are no faster on CPU.
_AUTO_CHUNK_ELEMENTS = 1 << 23


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


# --------------------------------------------------------------------------- the method base


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
