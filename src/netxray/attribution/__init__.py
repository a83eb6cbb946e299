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
- ``tokens``: :class:`TokenAttribution`, token scores per token id and class over a dataset;
- ``gradient``: Saliency, InputXGradient, IntegratedGradients, SmoothGrad;
- ``perturbation``: Occlusion, FeatureAblation, FiniteDifference (any callable, no gradient);
- ``layer``: hidden units: NeuronGradient, NeuronIntegratedGradients;
- ``layer_output``: attribution to a layer's output, token attributions:
  LayerGradient, LayerGradientXActivation, LayerIntegratedGradients;
- ``by_name``: :data:`METHODS` and :func:`explain`;
- ``dataset``: :func:`attribute_dataset`, over a whole dataset batch by batch;
- ``_engine``: what they share (targets, chunking, gradients, baselines, integration rules,
  the method base class) and why it is fast;
- ``_call``: Captum's calling convention (tuple inputs, ``additional_forward_args``) and the
  checks against silent wrong answers (no gradient, NaN weights, passes too big to fit).

Methods take ``inputs`` as a tensor or a tuple of tensors and ``additional_forward_args``,
as Captum's do; ``values`` come back shaped the same way.
"""

from netxray.attribution.by_name import METHODS, explain
from netxray.attribution.dataset import attribute_dataset
from netxray.attribution.gradient import (
    InputXGradient,
    IntegratedGradients,
    Saliency,
    SmoothGrad,
)
from netxray.attribution.layer import NeuronGradient, NeuronIntegratedGradients
from netxray.attribution.layer_output import (
    LayerGradient,
    LayerGradientXActivation,
    LayerIntegratedGradients,
)
from netxray.attribution.perturbation import FeatureAblation, FiniteDifference, Occlusion
from netxray.attribution.results import Attribution, DatasetAttribution
from netxray.attribution.tokens import TokenAttribution

__all__ = [
    "Attribution",
    "DatasetAttribution",
    "FeatureAblation",
    "FiniteDifference",
    "InputXGradient",
    "IntegratedGradients",
    "LayerGradient",
    "LayerGradientXActivation",
    "LayerIntegratedGradients",
    "NeuronGradient",
    "NeuronIntegratedGradients",
    "Occlusion",
    "Saliency",
    "SmoothGrad",
    "TokenAttribution",
    "METHODS",
    "attribute_dataset",
    "explain",
]
