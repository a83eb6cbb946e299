"""What ``torch.autograd.grad`` differentiates with respect to for a recorded layer output,
so that a model's later in-place change of that tensor cannot stand in for the layer's."""

from __future__ import annotations

from typing import Any

import torch

_EDGE = getattr(torch.autograd.graph, "get_gradient_edge", None)  # (torch >= 2.2)


def _grad_input(output: torch.Tensor) -> Any:
    """What ``torch.autograd.grad`` differentiates with respect to for a layer output: its
    gradient edge as the layer produced it. After an in-place operation of the model
    (``nn.ReLU(inplace=True)``, ``out += identity``) the tensor itself stands for the changed
    values, and the gradient with respect to it would be theirs, not the layer's. Without
    gradient edges: the tensor and its version, checked by :func:`_grad_inputs`."""
    return _EDGE(output) if _EDGE is not None else (output, output._version)


def _grad_inputs(kept: list[tuple[str, Any, bool, bool, torch.Tensor | None]]) -> list[Any]:
    """The inputs for ``torch.autograd.grad``; a tensor changed in place since its layer ran
    is refused (torch < 2.2, which has no gradient edges)."""
    if _EDGE is not None:
        return [x for _, x, *_ in kept]
    for name, (t, version), *_ in kept:
        if t._version != version:
            raise ValueError(
                f"the model changed the output of layer {name!r} in place after the layer ran "
                "(nn.ReLU(inplace=True), out += identity, ...); its gradient needs torch >= "
                "2.2 (gradient edges), or make that operation out-of-place"
            )
    return [t for _, (t, _), *_ in kept]
