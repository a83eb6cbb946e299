"""Class probabilities from a model's output: logits, or probabilities already.

Most classifiers return logits, and netxray squashes them (softmax; sigmoid for one logit).
A model whose last step is a ``Sigmoid``, ``Softmax`` or ``LogSoftmax`` returns
probabilities (or log-probabilities) already, and squashing those again flattens every
surface toward 1/k. The rule, decided once per model on one forward pass:

1. the output is (a view of) the output of a ``Sigmoid``/``Softmax``/``LogSoftmax``/
   ``LogSigmoid`` module (the sigmoid family of :mod:`netxray.families` counts as
   ``Sigmoid``): it is what that module makes;
2. else, several columns that all lie in [0, 1] and sum to 1 in every row (a
   ``torch.softmax`` in ``forward``): probabilities;
3. else logits. One column that lies in [0, 1] everywhere (on a whole grid) is ambiguous (a
   ``torch.sigmoid`` in ``forward``, or small logits): it is read as a logit, and
   :func:`warn_if_unclear` warns, saying how to make it unambiguous. (Several sigmoids
   applied in ``forward``, a multi-label head, cannot be told from logits: use an
   ``nn.Sigmoid`` module.)

:func:`watch_head` applies the rule around a forward pass; :func:`to_probabilities` turns an
output into ``(n, classes)`` probabilities by what it holds.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._warnings import NetxrayWarning
from netxray.families import activation_family

LOGITS = "logits"
PROBABILITIES = "probabilities"
LOG_PROBABILITIES = "log-probabilities"

#: Rows of probabilities sum to 1 within this, per output dtype (rounding of 16-bit floats).
_SUM_TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 3e-2}


def _module_kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.LogSoftmax | nn.LogSigmoid):
        return LOG_PROBABILITIES
    if isinstance(module, nn.Softmax | nn.Softmax2d) or activation_family(module) == "sigmoid":
        return PROBABILITIES
    return None


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether ``a`` is ``b`` or a view of the same values (``.squeeze(1)``, ``.view(-1)``)."""
    if a is b:
        return True
    return (a.device == b.device and a.numel() == b.numel() and a.numel() > 0
            and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()
            and a.storage_offset() == b.storage_offset() and a.is_contiguous()
            and b.is_contiguous())


class Head:
    """The probability-making modules' last outputs in one forward pass (see
    :func:`watch_head`); :meth:`kind` says what a model output holds."""

    def __init__(self) -> None:
        self.outputs: list[tuple[torch.Tensor, str, str]] = []  # (output, kind, class name)

    def kind(self, out: torch.Tensor) -> str:
        """:data:`LOGITS`, :data:`PROBABILITIES` or :data:`LOG_PROBABILITIES`: what ``out``
        (the model's output, ``(n,)`` or ``(n, classes)``, after the watched pass) holds, by
        the rule in the module docstring."""
        for t, kind, _ in reversed(self.outputs):
            if _same_values(out, t):
                return kind
        if out.ndim < 1 or out.numel() == 0 or not out.is_floating_point():
            return LOGITS
        x = out.detach().double()
        inside = bool(((x >= 0) & (x <= 1)).all())
        columns = 1 if x.ndim == 1 else int(x.shape[-1])
        if inside and columns > 1:
            tol = _SUM_TOLERANCE.get(out.dtype, 1e-4)
            if bool(((x.sum(-1) - 1).abs() <= tol).all()):
                return PROBABILITIES
        return LOGITS


@contextlib.contextmanager
def watch_head(model: nn.Module) -> Iterator[Head]:
    """Within this block, note the outputs of ``model``'s Sigmoid/Softmax/LogSoftmax modules,
    so that ``head.kind(output)`` can tell whether the model output is one of them. Run one
    forward pass inside; the hooks are removed on exit."""
    head = Head()
    handles = []

    def make(kind: str, name: str) -> Any:
        def hook(_m: nn.Module, _inputs: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor):
                head.outputs.append((output, kind, name))
        return hook

    try:
        for module in model.modules():
            kind = _module_kind(module)
            if kind is not None:
                handles.append(module.register_forward_hook(make(kind, type(module).__name__)))
        yield head
    finally:
        for h in handles:
            h.remove()


#: p(class 1) of one logit that lies in [0, 1]: from sigmoid(0) to sigmoid(1).
_SIGMOID_0_1 = (0.5, 1 / (1 + math.exp(-1)))


def warn_if_unclear(probs: np.ndarray, kind: str, columns: int, what: str) -> None:
    """Warn when one output read as a logit lay in [0, 1] at every point: it may be a
    probability (a ``torch.sigmoid`` in ``forward``, which no module shows), squashed again.
    ``probs``: ``(..., 2)`` the probabilities made from it; ``columns``: how many the model
    output. Check many points (a whole grid): a small model's logits on a few samples often
    all lie in [0, 1]."""
    if kind != LOGITS or columns != 1 or probs.size == 0:
        return
    p1 = probs[..., 1][np.isfinite(probs[..., 1])]
    if p1.size == 0:
        return
    lo, hi = _SIGMOID_0_1
    if p1.min() >= lo - 1e-6 and p1.max() <= hi + 1e-6:
        warnings.warn(
            f"{what}: the model's single output lies in [0, 1] everywhere, so it may be a "
            "probability (a torch.sigmoid in forward) rather than a logit. It was read as a "
            "logit (sigmoid applied: every probability of class 1 is between 0.5 and 0.73). "
            "If it is a probability, end the model with an nn.Sigmoid() module, which netxray "
            "recognises, or return the logit", NetxrayWarning, stacklevel=3)


def to_probabilities(t: torch.Tensor, kind: str) -> torch.Tensor:
    """``(n, classes)`` class probabilities from a model output ``t`` (``(n,)`` or
    ``(n, k)``) that holds ``kind``. One column is p(class 1) and becomes two,
    ``[1 - p, p]``; logits get softmax (sigmoid for one column); log-probabilities ``exp``.
    Several sigmoid outputs (multi-label) stay each class's own probability (rows need not
    sum to 1). 16-bit floats are computed in float32."""
    if kind not in (LOGITS, PROBABILITIES, LOG_PROBABILITIES):
        raise ValueError(f"unknown output kind {kind!r}")
    if t.ndim == 1:
        t = t[:, None]
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    if kind == LOG_PROBABILITIES:
        t, kind = t.exp(), PROBABILITIES
    if t.shape[1] == 1:
        p = torch.sigmoid(t) if kind == LOGITS else t
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(t, dim=1) if kind == LOGITS else t


def predicted_classes(model: nn.Module, x: Any) -> torch.Tensor:
    """``(n,)`` the class ``model`` predicts for each row of ``x``, by this module's rule: one
    logit predicts class 1 when it is > 0, one probability when it is > 0.5 (an
    ``argmax(1)`` of one column would always say class 0)."""
    from netxray._checks import output_tensor

    with torch.no_grad(), watch_head(model) as head:
        out = output_tensor(model(x))
    if out is None:
        raise TypeError("the model returned no tensor: return the class scores (logits)")
    return to_probabilities(out, head.kind(out)).argmax(1)


__all__ = ["LOGITS", "LOG_PROBABILITIES", "PROBABILITIES", "Head", "predicted_classes",
           "to_probabilities", "warn_if_unclear", "watch_head"]
