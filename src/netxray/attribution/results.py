"""What an attribution call returns: one :class:`Attribution` per batch of inputs, one
:class:`DatasetAttribution` per dataset.

Both are frozen dataclasses declared with ``eq=False``: ``==``, ``save`` and ``load`` come
from :class:`netxray._results.Result` (arrays compare by dtype, shape and value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from netxray._results import Result
from netxray.attribution.tokens import TokenAttribution


@dataclass(frozen=True, eq=False)
class Attribution(Result):
    """What one attribution call found.

    ``values``: ``(batch, ...)`` shaped like the inputs (layer methods: like the layer's
    output). ``inputs``: the inputs explained ``(batch, ...)``. ``target``: ``(batch,)`` the
    output column explained per sample (``None`` for neuron methods, which explain a hidden
    unit: see ``params["unit"]``). ``delta``: ``(batch,)`` completeness error
    ``sum(values) - (F(x) - F(baseline))`` for integrated-gradient methods, else ``None``.
    For tuple inputs (Captum's convention) ``values`` and ``inputs`` are tuples, one tensor
    per input. ``mask``: ``(batch, seq)`` which positions are real tokens (methods given
    ``mask=``, e.g. the attention mask), used by :meth:`token_scores`.
    """

    values: torch.Tensor
    inputs: torch.Tensor
    target: torch.Tensor | None
    delta: torch.Tensor | None
    method: str
    layer: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        v = self.values[0] if isinstance(self.values, tuple) else self.values
        return int(v.shape[0])

    @property
    def per_token(self) -> bool:
        """Whether ``values`` ``(batch, seq)`` already hold one score per token: occlusion or
        ablation of token ids (integer ``inputs`` shaped like ``values``), or given a mask."""
        v, x = self.values, self.inputs
        if isinstance(v, tuple) or v.ndim != 2:
            return False
        ids = isinstance(x, torch.Tensor) and not (x.is_floating_point() or x.is_complex())
        return self.mask is not None or (
            self.layer is None and ids and tuple(x.shape) == tuple(v.shape)
        )

    @property
    def of_tokens(self) -> bool:
        """Whether ``values`` are per token position ``(batch, seq, ...)``: one score per
        token (:attr:`per_token`), or given a ``mask``, or attributions of integer token ids
        ``(batch, seq)`` (a layer method on the embedding). Images ``(batch, C, H, W)`` are
        not: summing them per "token" would sum each channel."""
        v, x = self.values, self.inputs
        if isinstance(v, tuple):
            return False
        if self.per_token or (self.mask is not None and v.ndim >= 2):
            return True
        ids = isinstance(x, torch.Tensor) and x.ndim == 2 and not (
            x.is_floating_point() or x.is_complex())
        return ids and v.ndim >= 3 and tuple(v.shape[:2]) == tuple(x.shape)

    def token_scores(self) -> torch.Tensor:
        """One score per token ``(batch, seq)``: ``values`` summed over every dim after the
        sequence (the embedding), or ``values`` as they are when they are one per token
        (:attr:`per_token`: Occlusion / FeatureAblation on token ids), with padding (``mask``
        False) set to exactly 0, so sums and plots over tokens never see padding, NaN
        there included."""
        v = self.values
        if self.per_token:
            s = v
        elif isinstance(v, tuple) or v.ndim < 3 or (v.ndim > 3 and not self.of_tokens):
            shape = [tuple(t.shape) for t in v] if isinstance(v, tuple) else tuple(v.shape)
            raise ValueError(
                f"token_scores needs values shaped (batch, seq, embedding), or (batch, seq, "
                f"...) with a mask or token-id inputs, or one per token id, got {shape} (images "
                "(batch, C, H, W) have no tokens); attribute to an embedding layer (LayerIntegratedGradients("
                "model, layer=...)) or occlude the token ids (Occlusion(model).attribute(ids, "
                "window=1, baselines=pad_id))"
            )
        else:
            s = v.reshape(v.shape[0], v.shape[1], -1).sum(-1)
        if self.mask is None:
            return s
        return torch.where(self.mask.to(s.device), s, torch.zeros((), dtype=s.dtype, device=s.device))


@dataclass(frozen=True, eq=False)
class DatasetAttribution(Result):
    """Attribution summed up over a whole dataset, computed batch by batch.

    ``mean_abs``: ``(*features)`` mean |attribution| per feature over every sample;
    ``mean``: the signed mean; ``class_mean_abs``: ``(n_classes, *features)`` the same per
    class (zeros for a class with no sample: see ``class_counts``). ``grouped_by`` is
    ``"label"`` (true labels were given) or ``"pred"`` (the model's predicted class).
    ``tokens``: for token attributions (a per-token layer of a text model), statistics per
    token id and class (:class:`netxray.attribution.tokens.TokenAttribution`); the means
    above are then over real tokens, per unit of the layer.
    """

    mean_abs: torch.Tensor
    mean: torch.Tensor
    class_mean_abs: torch.Tensor
    class_counts: torch.Tensor
    n_samples: int
    method: str
    grouped_by: str
    target: str
    layer: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tokens: TokenAttribution | None = None

    @property
    def n_classes(self) -> int:
        return int(self.class_counts.shape[0])

    def ranking(self) -> list[int]:
        """Flat feature indices, most important (largest mean |attribution|) first."""
        return [int(i) for i in torch.argsort(self.mean_abs.flatten(), descending=True)]
