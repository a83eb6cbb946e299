"""Attribution to a layer's output: which parts of it drive the model's output.

For text models this is how tokens are explained: token ids are integers, so no gradient
reaches them; attribute to the embedding layer's output instead
(``LayerIntegratedGradients(model, layer="embeddings.word_embeddings")``), and sum each
token's scores over the embedding (:meth:`Attribution.token_scores`).

Captum's calling convention: ``inputs`` a tensor or a tuple of tensors of any dtype (token
ids included), ``additional_forward_args`` after them (an attention mask), ``baselines``
in input space (token ids of a reference, e.g. padding ids). ``values`` are shaped like the
layer's output ``(batch, ...)``.

How: a forward hook on the layer (on its k-th call for ``"name#k"``) swaps its output for a
clone of a leaf tensor that requires grad (the layer's own output for the gradient methods,
the points between the baseline's and the input's layer outputs for integrated gradients;
a clone, so in-place ops after the layer work), and one gradient of the selected outputs
(``gather`` and sum, not Captum's one autograd root per row) is taken w.r.t. that leaf;
nothing upstream of the layer enters the backward pass. The layer outputs at the inputs and
at the baselines, and the model's outputs there (for the target and ``delta``), come from
one stacked pass (Captum: four). The hook is removed in ``finally``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from netxray._checks import preserved_state
from netxray.attribution._call import (
    Inputs,
    _check_mask,
    _no_gradient,
    _rows_of,
    _tile,
    _untuple,
    _warn_nonfinite,
)
from netxray.attribution._engine import (
    Baselines,
    IGRule,
    Target,
    _as_2d,
    _baselines_for,
    _chunk_rows,
    _ig_rule,
    _integrate,
    _resolve_target,
    _row_sums,
    _run,
    _select,
)
from netxray.attribution.layer import _LayerMethod, _missing_call
from netxray.attribution.results import Attribution


def _layer_pass(
    model: nn.Module,
    module: nn.Module,
    name: str,
    call: int,
    xs: tuple[torch.Tensor, ...],
    args: tuple[Any, ...],
    replace: torch.Tensor | None = None,
    grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the model with call ``call`` of the layer differentiated at a leaf that requires
    grad: ``replace`` if given (same shape as the output), else a detached copy of the output.

    The model goes on with a clone of that leaf, not the leaf: an in-place op after the
    layer (``ReLU(inplace=True)``, ``out += identity``) then changes the clone, so autograd
    accepts it and the leaf keeps the layer's output as it was produced. Returns ``(that
    leaf, the model's output (rows, outputs))``; ``grad=False`` records no graph.
    """
    seen: list[torch.Tensor] = []
    ran = [0]

    def hook(_m: nn.Module, _i: Any, output: Any) -> torch.Tensor | None:
        k, ran[0] = ran[0], ran[0] + 1
        if k != call:
            return None
        if not isinstance(output, torch.Tensor) or not output.is_floating_point():
            kind = type(output).__name__ if not isinstance(output, torch.Tensor) else output.dtype
            raise ValueError(
                f"layer {name!r} outputs a {kind}, not one floating-point tensor; attribute to "
                "a submodule that outputs one (e.g. the embedding, not the block)"
            )
        if replace is not None:
            if replace.shape != output.shape:
                raise ValueError(
                    f"layer {name!r} output shape {tuple(output.shape)} differs from the "
                    f"{tuple(replace.shape)} expected for these rows; its output must be "
                    "one row per sample"
                )
            leaf = replace
        else:
            leaf = output.detach().requires_grad_(grad)
        seen.append(leaf)
        return leaf.clone()

    handle = module.register_forward_hook(hook)
    try:
        with torch.set_grad_enabled(grad):
            out = _as_2d(_run(model, xs, args), xs[0].shape[0])
    finally:
        handle.remove()
    if not seen:
        raise _missing_call(name, call, ran[0])
    return seen[0], out


def _layer_grad(
    model: nn.Module,
    module: nn.Module,
    name: str,
    call: int,
    xs: tuple[torch.Tensor, ...],
    args: tuple[Any, ...],
    t: torch.Tensor | Target,
    replace: torch.Tensor | None = None,
    checked: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(d output[t] / d layer output, the layer output used, the targets)`` for these rows."""
    leaf, out = _layer_pass(model, module, name, call, xs, args, replace)
    tt = t if checked else _resolve_target(t, out)
    sel = out.gather(1, tt.unsqueeze(1)).sum()  # type: ignore[union-attr]
    if not bool(torch.isfinite(sel)):
        _warn_nonfinite(model, (sel.detach(),), "attribution", "the explained outputs are")
    if not sel.requires_grad:
        raise _no_gradient(model, f"layer {name!r}'s output")
    (g,) = torch.autograd.grad(sel, leaf, allow_unused=True)
    if g is None:
        raise _no_gradient(model, f"layer {name!r}'s output")
    return g, leaf.detach(), tt  # type: ignore[return-value]


class _LayerOutputMethod(_LayerMethod):
    """Layer methods with Captum's calling convention (inputs of any dtype, tuples, args)."""

    def _gradient_pass(
        self,
        inputs: Inputs,
        target: Target,
        additional_forward_args: Any,
        internal_batch_size: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...], bool]:
        """``(gradients, activations, targets, inputs, whether a tuple)`` over row chunks."""
        xs, is_tuple, args = self._prepare(inputs, additional_forward_args, floating=False)
        n = xs[0].shape[0]
        rows = n if internal_batch_size is None else _chunk_rows(internal_batch_size, xs)
        t_all = None
        if not isinstance(target, str | int) and target is not None:
            t_all = torch.as_tensor(target)
            if t_all.ndim != 1 or t_all.shape[0] != n:
                raise ValueError(
                    f"target has shape {tuple(t_all.shape)}; pass one int per sample, shape ({n},)"
                )
        gs, acts, ts = [], [], []
        with preserved_state(self.model):
            for s in range(0, n, rows):
                sl = slice(s, min(s + rows, n))
                g, act, t = _layer_grad(
                    self.model, self.module, self.layer, self.call, tuple(x[sl] for x in xs),
                    _rows_of(args, sl), target if t_all is None else t_all[sl],
                )  # fmt: skip
                gs.append(g)
                acts.append(act)
                ts.append(t)
        return torch.cat(gs), torch.cat(acts), torch.cat(ts), xs, is_tuple


class LayerGradient(_LayerOutputMethod):
    """d output[target] / d (layer output), per unit of ``layer``. Captum's equivalent is
    ``LayerGradientXActivation(model, layer, multiply_by_inputs=False)``."""

    name = "layer_gradient"

    def attribute(
        self,
        inputs: Inputs,
        *,
        target: Target,
        additional_forward_args: Any = None,
        internal_batch_size: int | None = None,
        mask: torch.Tensor | None = None,
    ) -> Attribution:
        """``values`` ``(batch, *layer_output)``. ``mask`` ``(batch, seq)``: which positions
        are real tokens (the attention mask), for :meth:`Attribution.token_scores`."""
        g, _, t, xs, is_tuple = self._gradient_pass(
            inputs, target, additional_forward_args, internal_batch_size
        )
        _warn_nonfinite(self.model, (g,), self.name)
        return Attribution(
            g, _untuple(xs, is_tuple), t, None, self.name, layer=self.layer,
            mask=_check_mask(mask, g, "the layer's output"),
        )  # fmt: skip


class LayerGradientXActivation(_LayerOutputMethod):
    """Which units of ``layer`` drive the output: activation x d output[target] / d activation,
    per unit. ``values`` are shaped like the layer's output ``(batch, ...)``."""

    name = "layer_gradient_x_activation"

    def attribute(
        self,
        inputs: Inputs,
        *,
        target: Target,
        additional_forward_args: Any = None,
        internal_batch_size: int | None = None,
        mask: torch.Tensor | None = None,
    ) -> Attribution:
        """``values`` ``(batch, *layer_output)``; summed over units it is a first-order
        estimate of the target output (exact for a ReLU net without biases after the layer).
        ``mask``: as for :class:`LayerGradient`."""
        g, act, t, xs, is_tuple = self._gradient_pass(
            inputs, target, additional_forward_args, internal_batch_size
        )
        values = g * act
        _warn_nonfinite(self.model, (values,), self.name)
        return Attribution(
            values, _untuple(xs, is_tuple), t, None, self.name, layer=self.layer,
            mask=_check_mask(mask, values, "the layer's output"),
        )  # fmt: skip


class LayerIntegratedGradients(_LayerOutputMethod):
    """Integrated gradients w.r.t. ``layer``'s output, as Captum's ``LayerIntegratedGradients``:
    the path runs from the layer's output at the baselines to its output at the inputs.

    For text: ``LayerIntegratedGradients(model, layer="embeddings.word_embeddings")`` with
    token ids as ``inputs``, the attention mask in ``additional_forward_args`` (and as
    ``mask=`` so that :meth:`Attribution.token_scores` zeroes padding) and reference ids
    (e.g. the pad id) as ``baselines``. ``delta`` is ``sum(values) - (F(x) - F(baseline))``.
    """

    name = "layer_integrated_gradients"

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
        mask: torch.Tensor | None = None,
    ) -> Attribution:
        """``values`` ``(batch, *layer_output)``, ``delta`` ``(batch,)``.

        ``baselines`` are in input space, like ``inputs`` (``None``: zeros, i.e. token id 0).
        ``internal_batch_size`` bounds the rows (points x samples) of each forward pass.
        """
        xs, is_tuple, args = self._prepare(inputs, additional_forward_args, floating=False)
        n = xs[0].shape[0]
        bases = tuple(
            b.expand(n, *b.shape[1:]) if b.shape[0] == 1 else b for b in _baselines_for(baselines, xs)
        )
        rule = _ig_rule(method, n_steps)
        model, module, name, call = self.model, self.module, self.layer, self.call
        with preserved_state(model):
            act_x, act_b, f_x, f_b = self._ends(xs, bases, args, internal_batch_size)
            t = _resolve_target(target, f_x)
            rows = _chunk_rows(internal_batch_size, act_x, n * len(rule), self.name)
            m = len(xs)

            def grad_fn(
                scaled: tuple[torch.Tensor, ...], ts: torch.Tensor, rest: tuple[Any, ...]
            ) -> tuple[torch.Tensor, ...]:
                leaf = scaled[0].requires_grad_(True)
                g, _, _ = _layer_grad(model, module, name, call, rest[:m], rest[m:], ts, leaf, True)
                return (g,)

            (values,) = _integrate(grad_fn, (act_x,), (act_b,), t, rule, rows, (*xs, *args))
            delta = _row_sums((values,)) - (_select(f_x, t) - _select(f_b, t))
        _warn_nonfinite(model, (values,), self.name)
        params = {"n_steps": int(n_steps), "method": method}
        return Attribution(
            values, _untuple(xs, is_tuple), t, delta, self.name, layer=name, params=params,
            mask=_check_mask(mask, values, "the layer's output"),
        )  # fmt: skip

    def _ends(
        self,
        xs: tuple[torch.Tensor, ...],
        bases: tuple[torch.Tensor, ...],
        args: tuple[Any, ...],
        internal_batch_size: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Layer outputs and model outputs at the inputs and at the baselines, from passes
        that stack both (``2 * batch`` rows, or chunks of ``internal_batch_size``)."""
        n = xs[0].shape[0]
        both = tuple(torch.cat([x, b]) for x, b in zip(xs, bases, strict=True))
        both_args = _tile(args, 2)
        rows = 2 * n if internal_batch_size is None else _chunk_rows(internal_batch_size, xs)
        acts, outs = [], []
        for s in range(0, 2 * n, rows):
            sl = slice(s, min(s + rows, 2 * n))
            act, out = _layer_pass(
                self.model, self.module, self.layer, self.call, tuple(v[sl] for v in both),
                _rows_of(both_args, sl), grad=False,
            )  # fmt: skip
            acts.append(act.detach())
            outs.append(out.detach())
        act, out = torch.cat(acts), torch.cat(outs)
        return act[:n], act[n:], out[:n], out[n:]
