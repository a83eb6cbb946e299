"""Activation families: what "dead" and "saturated" mean for a layer.

The one definition shared by the statistics (:mod:`netxray.stats`: which units can die,
which saturate and where, each family's histogram range), the health rules that read
``LayerStats.family``, and the unit maps (:func:`netxray.boundary.unit_maps`: which units
are marked dead). Families, by what can go wrong:

- ``"relu"``: outputs 0 and passes no gradient below a threshold (ReLU, ReLU6, and
  ``Threshold(t, 0)`` with ``t >= 0``), so a unit that is never > 0 is *dead*;
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

#: Zero and no gradient below a threshold: units can be dead. ``nn.Threshold(t, value)``
#: only with ``value == 0`` and ``t >= 0`` (then "never > 0" means "never above ``t``", no
#: gradient): another value is output below ``t`` (``Threshold(0.5, 20)`` is never 0 and
#: ``Threshold(-1, -1)`` is negative while live), so those are "linear".
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
# SiLUActivation, QuickGELUActivation...), recognised by the whole words of their class
# name, in this order: non-activations that contain an activation's name ("LogSigmoid"),
# then leaky or smooth rectifiers (so "GELUTanh" is not tanh, "LeakyReLU" and "PReLU" not
# relu), then relu, tanh, sigmoid. A word starts at the start of the name, after a
# non-letter, at a lower-to-upper step ("New|GELU") or where a capital run ends before a
# lowercase letter ("GELU|Activation"); inside a capital run it does not, so "ELU" is not
# found in "RELU", nor "elu" in "ParallelUnit", nor "tanh" in "Tanhshrink".
_START = r"(?:^|(?<=[^A-Za-z])|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z]))"
_END = r"(?=$|[^A-Za-z]|(?<=[a-z])[A-Z]|(?<=[A-Z])[A-Z][a-z])"


def _words(*names: str) -> re.Pattern[str]:
    return re.compile(_START + "(?i:" + "|".join(names) + ")" + _END)


_NAMED_FAMILIES = (
    ("linear", _words("log_?sigmoid", "log_?softmax", "tanh_?shrink")),
    ("rectifier", _words("leaky", "prelu", "rrelu", "elu", "selu", "celu", "gelu", "silu",
                         "swish", "hard_?swish", "mish", "softplus")),
    ("relu", _words("relu")),
    ("tanh", _words("tanh", "hard_?tanh", "softsign")),
    ("sigmoid", _words("sigmoid", "hard_?sigmoid")),
)
#: Smooth gates ``x * g(x)`` (GELU, SiLU/Swish, Mish): far below zero they output ~0 and
#: pass ~0 gradient, so a unit whose pre-activation always lies there is dead too.
_GATE_NAME = _words("gelu", "silu", "swish", "hard_?swish", "mish")


def _is_leaf(module: nn.Module) -> bool:
    return not any(True for _ in module.children())


def activation_family(module: nn.Module) -> str:
    """``"relu"`` (can die), ``"rectifier"``, ``"tanh"``, ``"sigmoid"`` or ``"linear"`` (other).

    Torch's activation classes by type; a leaf module of another library by its class name
    (HF's ``GELUActivation`` is a rectifier, like ``nn.GELU``)."""
    if isinstance(module, nn.Threshold) and not (module.value == 0 and module.threshold >= 0):
        return "linear"  # below the threshold a unit outputs `value`: "never > 0" != dead
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
