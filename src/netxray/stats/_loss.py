"""The loss that gradient statistics follow: netxray's default, or the model's own.

Gradient statistics are per row: the gradient of the batch's *summed* loss with respect to
each row (sample or real token) of a layer output. Losses come as batch means, so each one
is paired with the number of items it averages over; the gradient of the mean times that
number is the gradient of the sum.

A HuggingFace model given ``labels`` computes its own loss (next-token for a causal LM,
per position for a masked LM or a tagger, per sample for a classifier); that is the loss it
trains on, so netxray uses it rather than guess a shift. Its item count is read by
recomputing the known conventions and keeping the one that equals the model's loss; a loss
matching none is refused (``loss_fn=`` says which loss to use).
"""

from __future__ import annotations

import inspect
import math
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from netxray._outputs import has_seq
from netxray.batches import Batch

#: cross-entropy's default ``ignore_index``: labels that mark positions without a target
IGNORE_INDEX = -100
#: relative tolerance within which a recomputed loss counts as the model's own
_MATCH_RTOL = 1e-4


def _labels_error(targets: torch.Tensor, outputs: torch.Tensor, problem: str) -> ValueError:
    return ValueError(
        f"the labels ({targets.dtype}, shape {tuple(targets.shape)}) {problem} (the model "
        f"outputs shape {tuple(outputs.shape)}). The default loss takes integer class indices "
        "(batch,) for cross-entropy, or float targets shaped like the output for mean squared "
        "error; for another loss pass loss_fn=(outputs, labels) -> batch mean"
    )


def default_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer class targets of any integer dtype (checked against the
    classes the model outputs: "label 7 but the model outputs 3 classes", not torch's
    "Target 7 is out of bounds"; ``-100`` is ignored, as cross-entropy does), mean squared
    error for float ones shaped like the output. Anything else is refused, naming the
    labels: a loss that broadcast them would be quietly wrong."""
    from netxray._checks import check_labels, n_classes_of

    if targets.dtype == torch.bool or targets.is_complex():
        raise _labels_error(targets, outputs, "are neither class indices nor float targets; "
                            "pass y.long() for classes or y.float() for regression")
    if targets.is_floating_point():
        if outputs.shape != targets.shape and outputs.numel() == targets.numel() == len(
                targets) and outputs.ndim <= 2 and targets.ndim <= 2:  # (n,) and (n, 1)
            targets = targets.reshape(outputs.shape)
        if outputs.shape != targets.shape:
            hint = ""
            if outputs.ndim == 2 and targets.ndim == 1 and bool((targets == targets.round()).all()):
                hint = "; they look like class indices: pass them as integers (y.long())"
            raise _labels_error(targets, outputs, "are float, so the default loss is mean "
                                f"squared error, which needs them shaped like the output{hint}")
        return nn.functional.mse_loss(outputs, targets.to(outputs.dtype))
    if outputs.ndim == targets.ndim == 2 and targets.shape[1] == 1 < outputs.shape[1]:
        targets = targets[:, 0]  # a column of class indices
    if outputs.ndim < 2 or targets.shape != outputs.shape[:1] + outputs.shape[2:]:
        one_hot = targets.shape == outputs.shape and bool(((targets == 0) | (targets == 1)).all())
        raise _labels_error(targets, outputs, (
            "look one-hot; cross-entropy takes class indices: pass y.argmax(1)" if one_hot else
            "do not fit cross-entropy, which needs one class index per output row"))
    check_labels(targets[targets != IGNORE_INDEX], n_classes_of(outputs))
    return nn.functional.cross_entropy(outputs, targets.long())


def loss_rows(
    out: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs and labels as the loss sees them: real tokens only for per-token outputs
    ``(batch, seq, ...)`` with per-token labels ``(batch, seq, ...)``."""
    y = y.to(out.device)
    if (mask is not None and has_seq(out, mask) and y.ndim >= 2
            and tuple(y.shape[:2]) == tuple(mask.shape)):
        m = mask.to(out.device)
        return out[m], y[m]
    return out, y


def loss_items(loss_fn: Any, o: torch.Tensor, t: torch.Tensor) -> int:
    """How many rows a batch-mean loss averages over: its rows, less those the default
    loss ignores (label -100)."""
    if loss_fn is default_loss and not t.is_floating_point() and t.numel() == o.shape[0]:
        return int((t != IGNORE_INDEX).sum())
    return int(o.shape[0])


def computes_own_loss(model: nn.Module) -> bool:
    """Whether ``model`` is a HuggingFace model that computes its loss from ``labels=``
    and returns it as a ``ModelOutput``'s ``.loss``."""
    if "transformers" not in sys.modules:
        return False
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel) or not getattr(model.config, "return_dict", True):
        return False
    try:
        return "labels" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def model_loss(result: Any) -> torch.Tensor | None:
    """The ``loss`` a model returned (a ``ModelOutput`` or dict entry), or None."""
    loss = result.get("loss") if isinstance(result, Mapping) else None
    return loss if isinstance(loss, torch.Tensor) and loss.ndim == 0 else None


def _causal(model: nn.Module) -> bool:
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:  # pragma: no cover - an older or newer layout
        return type(model).__name__.endswith(("ForCausalLM", "LMHeadModel"))
    names = {n for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()
             for n in ((v,) if isinstance(v, str) else v)}
    return type(model).__name__ in names


def _candidates(model: nn.Module, out: torch.Tensor, y: torch.Tensor
                ) -> list[tuple[str, torch.Tensor, int]]:
    """``(convention, mean loss, items)`` for each HF loss convention that fits the shapes."""
    o = out.detach().float()
    found = []
    if not y.is_floating_point() and o.ndim == y.ndim + 1 and o.shape[:-1] == y.shape:
        y = y.long().to(o.device)
        pairs = [("per-position cross-entropy", o, y)]
        if o.ndim >= 3:  # sequences: the next token, for a causal LM
            shifted = ("next-token cross-entropy", o[:, :-1], y[:, 1:])
            pairs.insert(0 if _causal(model) else 1, shifted)
        for what, lo, la in pairs:
            n = int((la != IGNORE_INDEX).sum())
            if n == 0:  # no target: the model's mean is 0 / 0
                found.append((what, torch.tensor(float("nan")), 0))
                continue
            s = nn.functional.cross_entropy(lo.reshape(-1, lo.shape[-1]), la.reshape(-1),
                                            ignore_index=IGNORE_INDEX, reduction="sum")
            found.append((what, s / n, n))
    elif y.is_floating_point() and o.numel() == y.numel() and o.ndim <= 2:
        t = y.to(o.device, torch.float32).reshape(o.shape)
        rows = int(o.shape[0])
        found.append(("mean squared error", nn.functional.mse_loss(o, t), rows))
        found.append(("binary cross-entropy", nn.functional.binary_cross_entropy_with_logits(
            o, t), rows))
    return found


def own_loss_items(model: nn.Module, loss: torch.Tensor, out: torch.Tensor, y: torch.Tensor,
                   mask: torch.Tensor | None) -> int:
    """How many items the model's own ``loss`` averages over, found by recomputing it.

    Refuses a loss none of the conventions reproduces (a custom loss): per-row gradients
    need that count. Warns when per-token labels at padding positions are not -100, since
    the model's loss then counts padding as targets.
    """
    value = float(loss.detach())
    tried = _candidates(model, out, y)
    if not math.isfinite(value):  # non-finite weights, or no target at all (0 / 0 -> 0)
        return next((n for _, v, n in tried if not math.isfinite(float(v))), 0)
    n = next((n for _, v, n in tried if abs(float(v) - value) <= _MATCH_RTOL * abs(value) + 1e-6),
             None)
    if n is None:
        seen = ", ".join(f"{what} {float(v):.6g}" for what, v, _ in tried) or "none fits"
        raise ValueError(
            f"the model computes its own loss from the labels ({value:.6g}), but netxray cannot "
            f"reproduce it ({seen}), so it cannot tell how many items it averages over, which "
            "per-row gradient statistics need. Pass loss_fn=(outputs, labels) -> batch mean to "
            "use that loss instead (outputs: the part output= picks, logits by default)"
        )
    if mask is not None and y.ndim == 2 and tuple(y.shape) == tuple(mask.shape) and bool(
            ((y.to(mask.device) != IGNORE_INDEX) & ~mask).any()):
        warnings.warn(
            "labels at padding positions are not -100, so the model's own loss, which "
            "netxray reports and follows, counts padding as targets; set labels to -100 "
            "where attention_mask is 0 (as HF's language-modeling collators do)",
            stacklevel=4,
        )
    return n


def run_for_loss(model: nn.Module, batch: Batch, own: bool) -> Any:
    """The model's output; a model that computes its own loss gets the labels too."""
    if not own:
        return batch.run(model)
    try:
        return replace(batch, kwargs={**batch.kwargs, "labels": batch.labels}).run(model)
    except IndexError as e:  # cross-entropy's "Target 56 is out of bounds"
        if "out of bounds" not in str(e):
            raise
        raise ValueError(
            f"the model computes its loss from the labels and refuses them ({e}); labels must "
            "be class indices 0..classes-1 (its vocabulary for a language model), or -100 "
            "where there is no target"
        ) from None


def batch_loss(model: nn.Module, result: Any, out: torch.Tensor, batch: Batch,
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], own: bool
                ) -> tuple[torch.Tensor, int]:
    """The batch's mean loss and how many items it averages over: the model's own loss
    when it computed one from the labels, else ``loss_fn`` on the real tokens."""
    y = batch.labels
    assert y is not None
    if own and (mine := model_loss(result)) is not None:
        return mine, own_loss_items(model, mine, out, y, batch.mask)
    o, t = loss_rows(out, y, batch.mask)
    loss = loss_fn(o, t)
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        got = (f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor)
               else type(loss).__name__)
        raise ValueError(f"loss_fn must return a scalar (the batch mean), got {got}")
    return loss, loss_items(loss_fn, o, t)
