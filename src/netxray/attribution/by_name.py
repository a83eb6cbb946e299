"""Output-attribution methods by name: :data:`METHODS` and :func:`explain`, one call for the
CLI, the report and notebooks."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from netxray.attribution._engine import Target, _Method
from netxray.attribution.gradient import (
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
)
from netxray.attribution.perturbation import FeatureAblation, FiniteDifference, Occlusion
from netxray.attribution.results import Attribution

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
