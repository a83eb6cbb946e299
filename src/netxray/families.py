"""Activation families: what "dead" and "saturated" mean for a layer.

The one definition shared by the statistics (:mod:`netxray.stats`: which units can die,
which saturate and where, each family's histogram range), the health rules that read
``LayerStats.family``, and the unit maps (:func:`netxray.boundary.unit_maps`: which units
are marked dead). Families, by what can go wrong:

- ``"relu"``: outputs a constant and passes no gradient below a threshold (ReLU, ReLU6,
  Threshold), so a unit that is never > 0 is *dead*;
- ``"rectifier"``: smooth or leaky rectifiers; "active" (> 0) is meaningful, "dead" is not,
  since they pass gradient for negative inputs too;
- ``"tanh"`` and ``"sigmoid"``: bounded, so they *saturate* (see :func:`saturation_band`);
- ``"linear"``: everything else (Linear and conv outputs, other activations).
"""

from __future__ import annotations

import re

from torch import nn

#: The family names, in the order of the list above.
FAMILIES: tuple[str, ...] = ("relu", "rectifier", "tanh", "sigmoid", "linear")

#: Zero (Threshold: a constant) and no gradient below a threshold: units can be dead.
RELU_FAMILY: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6, nn.Threshold)
#: Smooth or leaky rectifiers: "active" is meaningful, "dead" is not (they pass gradient).
RECTIFIER_FAMILY: tuple[type[nn.Module], ...] = (
    nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Softplus, nn.Hardswish,
)  # fmt: skip
#: Bounded in [-1, 1] with no gradient at the bounds (Hardtanh only with its default
#: bounds -1 and 1: another range is "linear", since the saturation band is +-1).
TANH_FAMILY: tuple[type[nn.Module], ...] = (nn.Tanh, nn.Softsign, nn.Hardtanh)
SIGMOID_FAMILY: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Hardsigmoid)

#: Fixed histogram range per family: edges are fixed so that histograms merge exactly.
DEFAULT_HIST_RANGES: dict[str, tuple[float, float]] = {
    "relu": (0.0, 8.0),
    "rectifier": (-2.0, 8.0),
    "tanh": (-1.0, 1.0),
    "sigmoid": (0.0, 1.0),
    "linear": (-8.0, 8.0),
}


# Activation modules of other libraries (HF's GELUActivation, NewGELUActivation,
# SiLUActivation, QuickGELUActivation...), recognised by class name in this order: a leaky
# or smooth rectifier first (so "GELUTanh" is not tanh, "LeakyReLU" not relu), then relu,
# tanh, sigmoid. "ELU" only in capitals ("ParallelUnit" is no activation).
_NAMED_FAMILIES = (
    ("rectifier", re.compile(r"(?i:leaky|gelu|silu|swish|mish|softplus)|ELU")),
    ("relu", re.compile(r"(?i:relu)")),
    ("tanh", re.compile(r"(?i:tanh)")),
    ("sigmoid", re.compile(r"(?i:sigmoid)")),
)
#: Smooth gates ``x * g(x)`` (GELU, SiLU/Swish, Mish): far below zero they output ~0 and
#: pass ~0 gradient, so a unit whose pre-activation always lies there is dead too.
_GATE_NAME = re.compile(r"(?i:gelu|silu|swish|mish)")


def _is_leaf(module: nn.Module) -> bool:
    return not any(True for _ in module.children())


def activation_family(module: nn.Module) -> str:
    """``"relu"`` (can die), ``"rectifier"``, ``"tanh"``, ``"sigmoid"`` or ``"linear"`` (other).

    Torch's activation classes by type; a leaf module of another library by its class name
    (HF's ``GELUActivation`` is a rectifier, like ``nn.GELU``)."""
    if isinstance(module, RELU_FAMILY):
        return "relu"
    if isinstance(module, RECTIFIER_FAMILY):
        return "rectifier"
    if isinstance(module, TANH_FAMILY):
        if isinstance(module, nn.Hardtanh) and (module.min_val, module.max_val) != (-1.0, 1.0):
            return "linear"  # ReLU6 is a Hardtanh too, but matched as "relu" above
        return "tanh"
    if isinstance(module, SIGMOID_FAMILY):
        return "sigmoid"
    cls = type(module)
    foreign = not cls.__module__.startswith("torch.")  # torch's own are all pinned above
    if foreign and _is_leaf(module) and not any(True for _ in module.parameters()):
        name = cls.__name__
        for family, pattern in _NAMED_FAMILIES:
            if pattern.search(name):
                return family
    return "linear"


def is_smooth_gate(module_type: str) -> bool:
    """Whether an activation class (by name: ``"GELU"``, ``"GELUActivation"``, ``"SiLU"``)
    is a smooth gate ``x * g(x)``, dead where its input is always far below zero."""
    return bool(_GATE_NAME.search(module_type))


def saturation_band(
    family: str, *, tanh_threshold: float = 0.99, sigmoid_threshold: float = 0.01
) -> tuple[float, float] | None:
    """The open interval outside which an activation counts as saturated, or None.

    tanh: ``|a| > tanh_threshold``; sigmoid: ``a < sigmoid_threshold`` or
    ``a > 1 - sigmoid_threshold``. Other families have no saturation band.
    """
    if family == "tanh":
        return (-tanh_threshold, tanh_threshold)
    if family == "sigmoid":
        return (sigmoid_threshold, 1.0 - sigmoid_threshold)
    return None


__all__ = [
    "DEFAULT_HIST_RANGES",
    "FAMILIES",
    "RECTIFIER_FAMILY",
    "RELU_FAMILY",
    "SIGMOID_FAMILY",
    "TANH_FAMILY",
    "activation_family",
    "is_smooth_gate",
    "saturation_band",
]
