"""Hidden units: which inputs drive one unit (neuron methods).

Neuron methods return ``values`` shaped like the inputs and ``target=None`` (the unit is in
``params["unit"]``). A forward hook on the layer records its output and is removed in
``finally``; neuron methods stop the forward pass right after the layer, so they cost only
the layers up to it. A module that runs several times in one forward pass (a shared
activation) is several layers, named as in recordings: ``"relu"`` is its first call,
``"relu#1"`` its second; the hooks count calls to reach the one named. Layer methods
(attribution to a layer's output, token attributions) live in
:mod:`netxray.attribution.layer_output` and share the layer lookup here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import preserved_state
from netxray.attribution._engine import (
    Baselines,
    IGRule,
    _baselines,
    _chunk_rows,
    _ig_rule,
    _integrate,
    _Method,
    _run,
)
from netxray.attribution.results import Attribution
from netxray.layers import _CALL_NAME, _named, call_name


class _StopForward(Exception):
    """Raised by our hook to end a forward pass once the layer we need has run."""


def _resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module, int]:
    """``(name, module, call)``: ``call`` k picks the k-th call of a module that runs several
    times in one forward pass, named ``"relu#k"`` as in recordings (the bare name is call 0)."""
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer and name:
                return name, m, 0
        raise ValueError("the layer module given is not a submodule of the model; pass its name")
    if not isinstance(layer, str):
        raise TypeError(f"layer must be a dotted name or a submodule, got {type(layer).__name__}")
    from netxray.capture import select_layers

    chosen = select_layers(model, layer)
    if len(chosen) != 1:
        raise ValueError(
            f"layer {layer!r} matches {len(chosen)} layers ({', '.join(chosen)}); name exactly one"
        )
    name, module = next(iter(chosen.items()))
    call = _CALL_NAME.fullmatch(name)
    return name, module, int(call[2]) if call and name not in _named(model) else 0


def _missing_call(name: str, call: int, ran: int) -> ValueError:
    """The error for a layer (or one call of it) that the forward pass never reached."""
    if ran == 0:
        return ValueError(f"layer {name!r} did not run in the forward pass; pick a layer it uses")
    base = name.rsplit("#", 1)[0]
    calls = ", ".join(repr(call_name(base, k)) for k in range(ran))
    return ValueError(
        f"layer {name!r} is call {call} of module {base!r}, which ran {ran} time(s) in one "
        f"forward pass: its calls are {calls}"
    )


def _layer_forward(
    model: nn.Module, module: nn.Module, name: str, x: torch.Tensor, *, call: int = 0
) -> torch.Tensor:
    """The output of call ``call`` of ``module`` on ``x``; the forward pass ends right there
    (nothing after the layer is needed), so it costs only the layers up to it."""
    from netxray.capture import first_tensor

    seen: list[torch.Tensor] = []
    ran = [0]

    def hook(_m: nn.Module, _i: Any, output: Any) -> None:
        k, ran[0] = ran[0], ran[0] + 1
        if k != call:
            return
        t = first_tensor(output)
        if t is None:
            raise ValueError(f"layer {name!r} outputs no tensor; attribute to one that does")
        seen.append(t)
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        try:
            _run(model, x)
        except _StopForward:
            pass
    finally:
        handle.remove()
    if not seen:
        raise _missing_call(name, call, ran[0])
    return seen[0]


class _LayerMethod(_Method):
    def __init__(self, model: nn.Module, layer: str | nn.Module) -> None:
        super().__init__(model)
        self.layer, self.module, self.call = _resolve_layer(self.model, layer)

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
            act = _layer_forward(self.model, self.module, self.layer, xg, call=self.call)
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
                act = _layer_forward(
                    self.model, self.module, self.layer, x[s : s + step], call=self.call
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
        rule = _ig_rule(method, n_steps)
        rows = _chunk_rows(internal_batch_size, x, x.shape[0] * len(rule), self.name)
        with preserved_state(self.model):
            with torch.no_grad():
                act = _layer_forward(self.model, self.module, self.layer, x[:1], call=self.call)
            idx = _unit_index(unit, tuple(act.shape[1:]), self.layer)
            t = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            (values,) = _integrate(
                lambda xs, _ts, _a: (self._unit_grad(xs[0], idx, unit)[0],),
                (x,), (base,), t, rule, rows,
            )  # fmt: skip
            u_x = self._unit_values(x, idx, rows)
            u_b = self._unit_values(base, idx, rows)
            u_b = u_b.expand(x.shape[0]) if u_b.shape[0] == 1 else u_b
            delta = values.reshape(x.shape[0], -1).sum(1) - (u_x - u_b)
        params = {"unit": list(idx), "n_steps": int(n_steps), "method": method}
        return Attribution(values, x, None, delta, self.name, layer=self.layer, params=params)
