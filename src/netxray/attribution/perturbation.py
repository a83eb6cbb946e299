"""Perturbation methods: change the input and watch the output; no gradient needed.

Occlusion and feature ablation set groups of features (a sliding window, or the groups of a
feature mask) to a baseline and record how much the target output drops; they take token
ids as they are (replaced by a baseline id) and ``additional_forward_args`` (a mask);
``mask=`` (the attention mask) leaves padding as it is and gives it no score.
Finite differences nudge each element by +-eps, and take any callable (a NumPy model too),
not only an ``nn.Module``. All the perturbed copies of a chunk of samples go through the model in one
forward pass of at most ``internal_batch_size`` rows.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import as_input_tensor, check_eval_mode, check_finite, preserved_state
from netxray._warnings import NetxrayWarning

# _AUTO_CHUNK_ELEMENTS is read through the module at call time, so lowering it there
# (as the tests do) reaches the mask cache here too.
from netxray.attribution import _engine
from netxray.attribution._call import _check_mask, _forward_args, _interleave, _rows_of
from netxray.attribution._engine import (
    Baselines,
    Target,
    _as_2d,
    _baselines,
    _chunk_rows,
    _float_inputs,
    _forward_chunks,
    _Method,
    _plan,
    _resolve_target,
    _rows,
    _run,
    _select,
)
from netxray.attribution.results import Attribution


class _Perturbation(_Method):
    """Replace groups of features by a baseline and measure how the target output drops.

    Nothing is differentiated, so integer inputs (token ids, category codes) are taken as
    they are: a group is replaced by the baseline id (``baselines=`` the pad or mask id),
    which is how one occludes tokens; ``values`` then take the output's dtype. ``mask``
    ``(batch, seq)`` (the attention mask, True / 1 for real tokens) keeps padding out:
    it is never set to the baseline (a pad turned into a mask id changes what the model
    sees) and its values are exactly 0.
    """

    def _perturbed_inputs(
        self, inputs: Any, baselines: Baselines, additional_forward_args: Any, mask: Any
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[Any, ...], torch.Tensor | None]:
        """``(inputs, baselines broadcastable to them, the additional args, the mask)``,
        checked."""
        check_eval_mode(self.model)
        x = as_input_tensor(inputs, self.model, "inputs")
        if x.dtype == torch.bool or x.is_complex():
            raise TypeError(
                f"inputs are {x.dtype}; pass floating-point features or integer ids (token ids "
                "are replaced by the baseline id)"
            )
        if not x.is_floating_point():
            b = baselines
            floating = isinstance(b, float) or (
                isinstance(b, torch.Tensor | np.ndarray) and not _is_integer(b)
            )
            if floating:
                got = repr(b) if isinstance(b, float) else f"{b.dtype} values"
                raise ValueError(
                    f"inputs are {x.dtype} ids (token ids?), so baselines must be an id that "
                    f"replaces them, got {got}: pass baselines= an int such as the tokenizer's "
                    "pad_token_id or mask_token_id (None means id 0)"
                )
        args = _forward_args(additional_forward_args, self.model, x.shape[0])
        base, real = _baselines(baselines, x), _check_mask(mask, x, "the inputs")
        if real is None:
            _warn_unmasked_padding(x, base, args)
        return x, base, args, real

    def _ablate(
        self,
        x: torch.Tensor,
        target: Target,
        n_masks: int,
        masks: Callable[[int, int], torch.Tensor],
        base: torch.Tensor,
        args: tuple[Any, ...],
        internal_batch_size: int | None,
        counts: torch.Tensor | None,
        real: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``masks(start, stop)``: masks ``start..stop-1`` as ``(k, *sample)`` bool, built
        per chunk so memory stays bounded however many there are. Each element's value is
        the sum over the masks covering it of ``F(x) - F(x with the mask at baseline)``,
        divided by ``counts`` (how many masks cover each element) when given. ``real``
        ``(batch, seq)``: only those positions are set to the baseline or get a value.
        A copy that changes nothing (a window over padding only, or over elements already
        at the baseline) is not run: its drop is exactly 0."""
        n, shape = x.shape[0], x.shape[1:]
        rows = _chunk_rows(internal_batch_size, x)
        d = math.prod(shape)
        if real is not None:  # (batch, seq) -> one flag per element of the inputs
            real = real.view(*real.shape, *([1] * (x.ndim - 2))).expand(x.shape)
        cache = masks(0, n_masks) if n_masks * d <= _engine._AUTO_CHUNK_ELEMENTS else None
        model = self.model
        with preserved_state(model), torch.no_grad():
            try:
                f_x = _forward_chunks(model, x, rows, args)
            except (RuntimeError, ValueError) as e:
                if x.is_floating_point():
                    raise
                why = e.__cause__ or e  # the model's own message, not _run's rewording
                raise ValueError(
                    f"the model cannot take these {x.dtype} inputs ({why}). Integer inputs are "
                    "taken as ids (token ids, replaced by a baseline id); if they are numeric "
                    "features, pass them as floats (inputs.float())"
                ) from e
            t = _resolve_target(target, f_x)
            init = _select(f_x, t)
            dtype = x.dtype if x.is_floating_point() else _float_of(f_x.dtype)
            values = torch.zeros((n, d), dtype=dtype, device=x.device)
            for sl, pl in _plan(n, n_masks, rows):
                xb, bb = x[sl], _rows(base, sl)
                b, k = xb.shape[0], pl.stop - pl.start
                mk = cache[pl] if cache is not None else masks(pl.start, pl.stop)
                hit = mk.unsqueeze(0) if real is None else mk.unsqueeze(0) & real[sl].unsqueeze(1)
                ablated = torch.where(hit, bb.unsqueeze(1), xb.unsqueeze(1)).reshape(b * k, d)
                # copies that change nothing (padding only, already at baseline) drop exactly 0
                live = (ablated.view(b, k, d) != xb.reshape(b, 1, d)).any(2).flatten()
                live = live.nonzero()[:, 0]
                diff = torch.zeros(b * k, dtype=dtype, device=x.device)
                if live.numel():
                    more = _rows_of(_interleave(_rows_of(args, sl), k), live)
                    out = _as_2d(_run(model, ablated[live].view(-1, *shape), more), live.numel())
                    tk = t[sl].repeat_interleave(k)[live]
                    diff[live] = (init[sl].repeat_interleave(k)[live] - _select(out, tk)).to(dtype)
                if real is None:  # (one set of masks for all rows: a matmul, no copy)
                    values[sl] += diff.view(b, k) @ mk.reshape(k, d).to(dtype)
                else:
                    hit = hit.expand(b, k, *shape).reshape(b, k, d).to(dtype)
                    values[sl] += torch.einsum("bk,bkd->bd", diff.view(b, k), hit)
        if counts is not None:
            values = values / counts.reshape(1, d).to(dtype).clamp(min=1)
        return values.view(n, *shape), t


def _warn_unmasked_padding(x: torch.Tensor, base: torch.Tensor, args: tuple[Any, ...]) -> None:
    """Warn when token ids come without ``mask=`` but with what looks like their attention
    mask among the arguments (0/1, shaped like the ids, every 0 on one id: the pad id) and
    the baseline would turn that padding into another id, so that padding gets scores."""
    if x.is_floating_point() or x.ndim != 2:
        return
    for i, a in enumerate(args):
        if not isinstance(a, torch.Tensor) or tuple(a.shape) != tuple(x.shape):
            continue
        pad = a == 0
        if not bool(pad.any()) or not bool((pad | (a == 1)).all()):
            continue
        ids = x[pad]
        if bool((ids == ids[0]).all()) and bool((base.expand_as(x)[pad] != ids).any()):
            warnings.warn(
                f"additional_forward_args[{i}] looks like the attention mask (its 0s all hold "
                f"id {int(ids[0])}), but no mask= was given: padding is set to the baseline "
                "like a token, which changes what the model sees, and gets scores; pass "
                f"mask=additional_forward_args[{i}] to leave padding out",
                NetxrayWarning,
                stacklevel=4,
            )
            return


def _is_integer(b: torch.Tensor | np.ndarray) -> bool:
    if isinstance(b, np.ndarray):
        return bool(np.issubdtype(b.dtype, np.integer))
    return not (b.is_floating_point() or b.is_complex() or b.dtype == torch.bool)


def _float_of(dtype: torch.dtype) -> torch.dtype:
    """The dtype of values for integer inputs: the output's, or float32 for integer outputs."""
    return dtype if dtype.is_floating_point else torch.float32


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
        additional_forward_args: Any = None,
        mask: torch.Tensor | np.ndarray | None = None,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``window``/``stride``: an int for the last two dims (images ``(C, H, W)``: every
        channel at once; token ids ``(seq,)``: that many tokens) or sizes for the last dims;
        ``stride`` defaults to ``window`` (non-overlapping). ``values`` ``(batch, ...)``.
        ``additional_forward_args`` (an attention mask) go to the model with every copy;
        ``mask`` ``(batch, seq)``, the attention mask again: padding is left as it is and
        scores exactly 0 (then :meth:`Attribution.token_scores` zeroes it too)."""
        x, base, args, real = self._perturbed_inputs(
            inputs, baselines, additional_forward_args, mask
        )
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
            x, target, math.prod(n_per_dim), masks, base, args, internal_batch_size, counts, real
        )
        params = {"window": list(win), "stride": list(std)}
        return Attribution(values, x, t, None, self.name, params=params, mask=real)


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
        additional_forward_args: Any = None,
        mask: torch.Tensor | np.ndarray | None = None,
        internal_batch_size: int | None = None,
    ) -> Attribution:
        """``values`` ``(batch, ...)``: F(x) - F(x with the element's group at baseline).
        ``additional_forward_args``, ``mask``: as for :class:`Occlusion`."""
        x, base, args, real = self._perturbed_inputs(
            inputs, baselines, additional_forward_args, mask
        )
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
            x, target, int(ids.shape[0]), masks, base, args, internal_batch_size, None, real
        )
        n_groups = int(ids.shape[0])
        return Attribution(
            values, x, t, None, self.name, params={"n_groups": n_groups}, mask=real
        )


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
