"""Which inputs (or hidden units) drive a model's output: gradient and perturbation attribution.

One contract for every method: ``Method(model).attribute(inputs, *, target, ...)`` returns an
:class:`Attribution` whose ``values`` are shaped like the inputs (layer methods: like the
layer's output) and whose ``delta`` is the completeness error where the method has one
(integrated gradients), ``None`` otherwise.

``target`` picks the output column to explain: an int, one int per sample (a tensor, array
or list), ``"pred"`` (each sample's predicted class, the argmax of the model's output at
the input) or ``None`` for a model with a single output column.

Where things live:

- ``results``: :class:`Attribution` and :class:`DatasetAttribution`, what every call returns;
- ``gradient``: Saliency, InputXGradient, IntegratedGradients, SmoothGrad;
- ``perturbation``: Occlusion, FeatureAblation, FiniteDifference (any callable, no gradient);
- ``layer``: hidden units: NeuronGradient, NeuronIntegratedGradients,
  LayerGradientXActivation;
- ``by_name``: :data:`METHODS` and :func:`explain`;
- ``dataset``: :func:`attribute_dataset`, over a whole dataset batch by batch;
- ``_engine``: what they share (targets, chunking, gradients, baselines, integration rules,
  the method base class) and why it is fast.
"""

from netxray.attribution.by_name import METHODS, explain
from netxray.attribution.dataset import attribute_dataset
from netxray.attribution.gradient import (
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
)
from netxray.attribution.layer import (
    LayerGradientXActivation,
    NeuronGradient,
    NeuronIntegratedGradients,
)
from netxray.attribution.perturbation import FeatureAblation, FiniteDifference, Occlusion
from netxray.attribution.results import Attribution, DatasetAttribution

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
