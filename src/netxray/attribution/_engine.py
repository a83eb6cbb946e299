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
    float_ids_error,
    output_tensor,
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


_DTYPE_WORDS = ("scalar type", "same dtype", "Input type")
_SHAPE_WORDS = ("shape", "size", "dimension", "mat1", "mat2", "expected input", "Expected")


def _run(fn: Callable[..., Any], x: torch.Tensor | tuple[torch.Tensor, ...], args: tuple = ()) -> Any:
    """Call ``fn(*inputs, *args)``; turn a dtype or shape mismatch into a ValueError that says
    what was passed."""
    xs = x if isinstance(x, tuple) else (x,)
    try:
        return fn(*xs, *args)
    except RuntimeError as e:
        clear = float_ids_error(xs, e, fn if isinstance(fn, nn.Module) else None)
        if clear is not None:  # (and the next try, integer ids, would be refused by gradients)
            raise ValueError(
                f"{clear}. Token ids have no gradient: for a gradient method attribute to the "
                "embedding layer's output (LayerIntegratedGradients(model, layer=...)), or "
                "occlude the integer ids (Occlusion(model).attribute(ids, window=1, "
                "baselines=pad_id))"
            ) from e
        if any(w in str(e) for w in _DTYPE_WORDS):
            kinds = ", ".join(str(v.dtype) for v in xs)
            raise ValueError(
                f"the model cannot take inputs of dtype {kinds} ({e}); pass the dtype it was "
                "built for (token ids as integers, features as floats)"
            ) from e
        if any(w in str(e) for w in _SHAPE_WORDS):
            shapes = ", ".join(str(tuple(v.shape)) for v in xs)
            raise ValueError(
                f"the model cannot take inputs of shape {shapes} ({e}); pass inputs "
                "shaped (batch, ...) like the data the model was built for"
            ) from e
        raise


def _as_2d(out: Any, rows: int) -> torch.Tensor:
    """The model's output as ``(rows, outputs)``; a ``(rows,)`` output is one column. A
    dict, HF ``ModelOutput`` or tuple gives its logits by the library's one rule
    (:func:`netxray._checks.output_tensor`: ``logits``, else the first tensor)."""
    if not isinstance(out, torch.Tensor):
        found = output_tensor(out)
        if found is None:
            raise ValueError(
                f"the model returned a {type(out).__name__} with no tensor in it; wrap it so "
                "it returns one (batch, outputs) tensor"
            )
        out = found
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
    from netxray.attribution._call import _embedding_advice

    x = as_input_tensor(inputs, model, "inputs")
    if not x.is_floating_point():
        raise ValueError(
            f"{method} differentiates w.r.t. the inputs, but they are {x.dtype} (token ids?): "
            f"no gradient reaches integers. {_embedding_advice(model)}"
        )
    return x


def _chunk_rows(
    internal_batch_size: int | None,
    x: torch.Tensor | tuple[torch.Tensor, ...],
    total_rows: int | None = None,
    what: str = "this call",
) -> int:
    """Rows per forward pass: the user's bound, else a size-based default.

    ``total_rows`` (samples x points) lets a user's bound be checked against memory up
    front: a pass whose stacked inputs alone exceed a quarter of the device's memory is
    refused with the bound that fits.
    """
    from netxray.attribution._call import _check_rows

    xs = x if isinstance(x, tuple) else (x,)
    per_row = max(1, sum(v[0].numel() for v in xs))
    if internal_batch_size is None:
        return max(1, _AUTO_CHUNK_ELEMENTS // per_row)
    if isinstance(internal_batch_size, bool) or int(internal_batch_size) < 1:
        raise ValueError(f"internal_batch_size must be a positive int, got {internal_batch_size}")
    rows = int(internal_batch_size)
    if total_rows is not None:
        itemsize = max(v.element_size() for v in xs)
        _check_rows(min(rows, total_rows), per_row, itemsize, xs[0].device, what)
    return rows


def _plan(n: int, points: int, rows: int | None) -> Iterator[tuple[slice, slice]]:
    """Split ``n`` samples x ``points`` evaluations per sample into chunks of <= ``rows`` rows.

    Two ways to fill a chunk: whole samples (all their points), or every sample at a run of
    points (as Captum splits integration steps); the one with fewer, fuller chunks wins
    (64 rows, 8 samples x 50 points: 7 chunks of 8 steps, not 8 chunks of one sample).
    Callers accumulate per sample, so either completes the sum.
    """
    if rows is None or n * points <= rows:
        yield slice(0, n), slice(0, points)
        return
    by_sample = -(-n // (rows // points)) if points <= rows else None
    by_step = -(-points // (rows // n)) if n <= rows else None
    if by_step is not None and (by_sample is None or by_step < by_sample):
        k = rows // n
        for q in range(0, points, k):
            yield slice(0, n), slice(q, min(q + k, points))
    elif by_sample is not None:
        b = rows // points
        for s in range(0, n, b):
            yield slice(s, min(s + b, n)), slice(0, points)
    else:
        for s in range(n):
            for q in range(0, points, rows):
                yield slice(s, s + 1), slice(q, min(q + rows, points))


def _forward_chunks(
    fn: Callable[..., Any],
    x: torch.Tensor | tuple[torch.Tensor, ...],
    rows: int | None,
    args: tuple = (),
) -> torch.Tensor:
    """``fn(*x, *args)`` as ``(batch, outputs)`` under no_grad, ``rows`` at a time."""
    from netxray.attribution._call import _rows_of

    xs = x if isinstance(x, tuple) else (x,)
    n = xs[0].shape[0]
    with torch.no_grad():
        if rows is None or n <= rows:
            return _as_2d(_run(fn, xs, args), n)
        outs = []
        for s in range(0, n, rows):
            sl = slice(s, min(s + rows, n))
            outs.append(_as_2d(_run(fn, tuple(v[sl] for v in xs), _rows_of(args, sl)), sl.stop - s))
        return torch.cat(outs)


def _target_grads(
    model: nn.Module,
    xs: tuple[torch.Tensor, ...],
    target: Target,
    args: tuple = (),
    checked: bool = False,
) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Gradients of the selected output w.r.t. each input ``(rows, ...)``, and the targets.

    ``checked``: ``target`` is already a resolved ``(rows,)`` int64 tensor (internal calls).
    Raises, naming the embedding layers to attribute to, when no gradient reaches an input:
    zeros there would be no answer.
    """
    from netxray.attribution._call import _no_gradient, _warn_nonfinite

    with torch.enable_grad():
        xg = tuple(x.detach().requires_grad_(True) for x in xs)
        out = _as_2d(_run(model, xg, args), xs[0].shape[0])
        t = target if checked else _resolve_target(target, out)  # type: ignore[assignment]
        sel = out.gather(1, t.unsqueeze(1)).sum()
        if not bool(torch.isfinite(sel)):
            _warn_nonfinite(model, (sel.detach(),), "attribution", "the explained outputs are")
        which = "the inputs" if len(xs) == 1 else "inputs[{}]"
        if not sel.requires_grad:
            raise _no_gradient(model, which.format(0))
        gs = torch.autograd.grad(sel, xg, allow_unused=True)
    for i, g in enumerate(gs):
        if g is None:
            raise _no_gradient(model, which.format(i))
    return tuple(gs), t


def _target_grad(
    model: nn.Module, x: torch.Tensor, target: Target, checked: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_target_grads` for one input tensor."""
    (g,), t = _target_grads(model, (x,), target, checked=checked)
    return g, t


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


def _baselines_for(
    baselines: Baselines | tuple[Baselines, ...], xs: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, ...]:
    """One baseline per input (:func:`_baselines`); a tuple gives one each, anything else is
    used for every input, as Captum does."""
    if isinstance(baselines, tuple):
        if len(baselines) != len(xs):
            raise ValueError(
                f"baselines is a tuple of {len(baselines)} but there are {len(xs)} input "
                "tensor(s); pass one baseline per input (or one number for all)"
            )
        return tuple(_baselines(b, x) for b, x in zip(baselines, xs, strict=True))
    return tuple(_baselines(baselines, x) for x in xs)


def _rows(b: torch.Tensor, sl: slice) -> torch.Tensor:
    """The rows of a broadcastable ``(1 | batch, ...)`` tensor for samples ``sl``."""
    return b if b.shape[0] == 1 else b[sl]


#: Gauss-Legendre points come from an n x n eigenproblem (NumPy's ``leggauss``): 8 n^2 bytes
#: and O(n^3) time (2048 points: 32 MiB, ~15 s measured here). More points than this are
#: refused up front; Riemann rules have no such limit (their points are made chunk by chunk).
MAX_GAUSS_LEGENDRE_STEPS = 2048


class _Rule:
    """Points ``alphas`` in [0, 1] and weights for integrating over the straight path.

    Riemann points are computed per chunk (:meth:`take`), so ``n_steps`` costs no memory
    up front however large; Gauss-Legendre's are computed once (at most
    :data:`MAX_GAUSS_LEGENDRE_STEPS`).
    """

    def __init__(self, method: str, n_steps: int) -> None:
        if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive int, got {n_steps!r}")
        self.method, self.n = method, int(n_steps)
        self._gl: tuple[np.ndarray, np.ndarray] | None = None
        if method == "gausslegendre":
            if self.n > MAX_GAUSS_LEGENDRE_STEPS:
                need = 8 * self.n**2
                raise ValueError(
                    f"gausslegendre with n_steps={self.n} solves a {self.n} x {self.n} "
                    f"eigenproblem ({need / (1 << 30):.3g} GiB, time growing as n^3); use at "
                    f"most {MAX_GAUSS_LEGENDRE_STEPS} steps, or method='riemann_middle' (points "
                    "made chunk by chunk, no memory limit)"
                )
            nodes, weights = np.polynomial.legendre.leggauss(self.n)
            self._gl = (0.5 * (nodes + 1.0), 0.5 * weights)
        elif method == "riemann_trapezoid":
            if self.n < 2:
                raise ValueError("riemann_trapezoid needs n_steps >= 2")
        elif method not in ("riemann_left", "riemann_right", "riemann_middle"):
            raise ValueError(
                f"unknown integration method {method!r}; choose gausslegendre, riemann_left, "
                "riemann_right, riemann_middle or riemann_trapezoid"
            )

    def __len__(self) -> int:
        return self.n

    def take(self, pl: slice) -> tuple[np.ndarray, np.ndarray]:
        """Points and weights ``pl.start`` to ``pl.stop``."""
        if self._gl is not None:
            return self._gl[0][pl], self._gl[1][pl]
        n, k = self.n, np.arange(pl.start, pl.stop, dtype=np.float64)
        if self.method == "riemann_left":
            return k / n, np.full(k.shape, 1.0 / n)
        if self.method == "riemann_right":
            return (k + 1) / n, np.full(k.shape, 1.0 / n)
        if self.method == "riemann_middle":
            return (k + 0.5) / n, np.full(k.shape, 1.0 / n)
        w = np.full(k.shape, 1.0 / (n - 1))
        w[(k == 0) | (k == n - 1)] = 0.5 / (n - 1)
        return k / (n - 1), w


def _ig_rule(method: str, n_steps: int) -> _Rule:
    """The integration rule for ``method`` with ``n_steps`` points (checked)."""
    return _Rule(method, n_steps)


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"model must be a torch.nn.Module, got {type(model).__name__}; for a plain "
            "function (e.g. NumPy), use FiniteDifference"
        )
    return model


def _integrate(
    grad_fn: Callable[
        [tuple[torch.Tensor, ...], torch.Tensor, tuple], tuple[torch.Tensor, ...]
    ],
    xs: tuple[torch.Tensor, ...],
    bases: tuple[torch.Tensor, ...],
    t: torch.Tensor,
    rule: _Rule,
    rows: int | None,
    args: tuple = (),
) -> tuple[torch.Tensor, ...]:
    """(x - base) * sum_k w_k grad(base + a_k (x - base)) for every input of the tuple, one
    forward+backward per chunk. Points are stacked step-major (all samples at step k, then
    k+1), as Captum does; per-sample ``args`` are tiled alongside."""
    from netxray.attribution._call import _rows_of, _tile

    n = xs[0].shape[0]
    totals = [torch.zeros_like(x) for x in xs]
    for sl, pl in _plan(n, len(rule), rows):
        alphas, weights = rule.take(pl)
        k = len(alphas)
        scaled, shapes = [], []
        for x, base in zip(xs, bases, strict=True):
            xb, bb = x[sl], _rows(base, sl)
            shape = x.shape[1:]
            a = torch.as_tensor(alphas, dtype=x.dtype, device=x.device)
            # base + a_k * diff for every step k, in one fused pass: (k, b, ...) -> (k * b, ...)
            s = torch.addcmul(bb.unsqueeze(0), a.view(k, 1, *(1,) * len(shape)), (xb - bb).unsqueeze(0))
            scaled.append(s.reshape(k * xb.shape[0], *shape))
            shapes.append((xb.shape[0], shape))
        gs = grad_fn(tuple(scaled), t[sl].repeat(k), _tile(_rows_of(args, sl), k))
        for total, g, (b, shape) in zip(totals, gs, shapes, strict=True):
            w = torch.as_tensor(weights, dtype=g.dtype, device=g.device)
            total[sl] += (w @ g.reshape(k, -1)).view(b, *shape)
    return tuple(total * (x - base) for total, x, base in zip(totals, xs, bases, strict=True))


def _row_sums(values: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Each sample's sum over every element of every tensor: ``(batch,)``."""
    return sum(v.reshape(v.shape[0], -1).sum(1) for v in values)  # type: ignore[return-value]


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

    def _prepare(
        self, inputs: Any, additional_forward_args: Any, floating: bool = True
    ) -> tuple[tuple[torch.Tensor, ...], bool, tuple[Any, ...]]:
        """``(inputs as a tuple, whether a tuple was given, the additional args)``."""
        from netxray.attribution._call import _as_tuple, _forward_args

        check_eval_mode(self.model)
        xs, is_tuple = _as_tuple(inputs, self.model, floating, self.name)
        return xs, is_tuple, _forward_args(additional_forward_args, self.model, xs[0].shape[0])

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted class per sample ``(batch,)`` (used to group dataset attributions)."""
        with preserved_state(self.model):
            return _forward_chunks(self.model, x, _chunk_rows(None, x)).argmax(1)
