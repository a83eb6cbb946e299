"""Attribution over a whole dataset: :func:`attribute_dataset` attributes and reduces one
batch at a time, so memory does not grow with the dataset.

Batches are read as models take them (:func:`netxray.batches.read_batches`): tensors,
``(x, y)`` tuples, dicts and HF ``BatchEncoding``s. A dict batch is attributed as Captum's
convention has it: one entry (``input_ids`` by default) is the ``inputs``, the other tensors
are ``additional_forward_args``, and a small wrapper passes them all back to the model by
keyword. Text models attributed at a per-token layer (``LayerIntegratedGradients`` on the
embedding), or by occluding their token ids (``Occlusion`` / ``FeatureAblation``, given the
batch's attention mask as ``mask=``), also get per-token-type statistics
(:class:`TokenAttribution`), padding left out.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from netxray.attribution._engine import _Method
from netxray.attribution.layer import _NeuronMethod
from netxray.attribution.perturbation import FiniteDifference, _Perturbation
from netxray.attribution.results import Attribution, DatasetAttribution
from netxray.attribution.tokens import TokenAttribution, token_table
from netxray.batches import Batch, BatchFormat, LabelSpec, MaskSpec, OutputSpec, pick_output

AnyMethod = _Method | FiniteDifference

#: the dict entry attributed by default, when a batch has it
DEFAULT_INPUT = "input_ids"


class _Call(nn.Module):
    """The model called as a batch wants it: ``model(**{names[i]: tensors[i]}, **static)``
    (or ``model(*tensors)`` when ``names`` is None), then the chosen output tensor.

    Attribution methods call ``model(*inputs, *additional_forward_args)``; this puts the
    keywords back. The wrapped model is a submodule, so hooks and state checks reach it.
    """

    def __init__(self, model: nn.Module, names: tuple[str, ...] | None,
                 static: Mapping[str, Any], output: OutputSpec) -> None:
        super().__init__()
        self.model = model
        self.names = names
        self.static = dict(static)
        self.output = output
        self.training = model.training  # its own flag only: .train() would recurse

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        if self.names is None:
            out = self.model(*tensors)
        else:
            out = self.model(**dict(zip(self.names, tensors, strict=True)), **self.static)
        return pick_output(out, self.output)


def _plan(
    method: AnyMethod, b: Batch, input_key: str | None, output: OutputSpec
) -> tuple[AnyMethod, torch.Tensor, tuple[Any, ...]]:
    """``(the method bound to a model taking this batch, inputs, additional args)``."""
    if isinstance(method, FiniteDifference):
        if b.kwargs or output is not None:
            raise ValueError(
                "FiniteDifference takes tensor batches only; for dict batches or output= use a "
                "gradient method (Saliency, LayerIntegratedGradients, ...)"
            )
        return method, b.args[0], ()
    model = method.model
    if not b.kwargs:
        if output is None:
            return method, b.args[0], ()
        bound = copy.copy(method)
        bound.model = _Call(model, None, {}, output)
        return bound, b.args[0], ()
    from netxray.batches import check_keywords

    check_keywords(model, b.kwargs)
    tensors = {k: v for k, v in b.kwargs.items() if isinstance(v, torch.Tensor) and v.ndim}
    key = input_key
    if key is None:
        key = DEFAULT_INPUT if DEFAULT_INPUT in tensors else next(iter(tensors), None)
    if key is None or key not in tensors:
        have = ", ".join(map(repr, tensors)) or "no tensor"
        raise ValueError(
            f"input_key={key!r} is not a tensor entry of the batch (it has {have}); pass "
            "input_key= the entry to attribute"
        )
    rest = [k for k in tensors if k != key]
    static = {k: v for k, v in b.kwargs.items() if k not in tensors}
    bound = copy.copy(method)
    bound.model = _Call(model, (key, *rest), static, output)
    return bound, tensors[key], tuple(tensors[k] for k in rest)


def _predicted(bound: AnyMethod, inputs: torch.Tensor, args: tuple[Any, ...]) -> torch.Tensor:
    if not args:
        return bound._predict(inputs)  # type: ignore[union-attr]
    from netxray._checks import preserved_state

    with preserved_state(bound.model), torch.no_grad():  # type: ignore[arg-type]
        return bound.model(inputs, *args).argmax(1)  # type: ignore[misc]


def attribute_dataset(
    method: AnyMethod,
    data: Any,
    *,
    target: int | Literal["pred", "label"] = "pred",
    batch_size: int = 1024,
    n_classes: int | None = None,
    labels: LabelSpec = "labels",
    mask: MaskSpec = "attention_mask",
    output: OutputSpec = None,
    input_key: str | None = None,
    on_batch: Callable[[Attribution, Batch], None] | None = None,
    progress: bool | None = None,
    **kwargs: Any,
) -> DatasetAttribution:
    """Mean |attribution| per feature over a whole dataset, overall and per class.

    ``data``: a tensor/array, an ``(X, y)`` pair, a dict of arrays, a DataLoader or any
    iterable of batches (tensors, tuples, dicts, ``BatchEncoding``s); ``labels``, ``mask``
    and ``output`` say where the labels, the attention mask and the explained output are,
    as in :func:`netxray.activations`. A dict batch is passed to the model by keyword;
    the entry ``input_key`` (default ``input_ids``, else the first) is what is attributed,
    the other tensors ride along as ``additional_forward_args``.

    ``target``: ``"pred"`` (explain each sample's predicted class), ``"label"`` (its true
    label; needs labels) or an int. Samples are grouped by their true label when the data
    has labels, else by the predicted class. ``kwargs`` go to ``method.attribute`` (e.g.
    ``n_steps=``, ``baselines=0`` or a pad id, ``internal_batch_size=``; ``unit=`` for
    neuron methods, which take no target).

    Token attributions (a layer method whose ``values`` are ``(batch, seq, ...)`` for
    integer ids ``(batch, seq)``, e.g. ``LayerIntegratedGradients`` on the embedding):
    the features are the layer's units, averaged over real tokens (the mask leaves padding
    out), and ``tokens`` holds per-token-id statistics of the token scores
    (:class:`TokenAttribution`). Sequences may differ in length from batch to batch.
    ``Occlusion`` / ``FeatureAblation`` on token ids give one score per token: they get the
    batch's mask as ``mask=`` (padding never set to the baseline), the means are then
    scalars (the mean score over real tokens), and ``tokens`` is filled the same way.

    ``on_batch(attribution, batch)`` is called with each batch's :class:`Attribution` and
    :class:`netxray.batches.Batch`, e.g. to write per-sample values out as they come or keep
    a few examples, without a second pass over the data. ``progress``: a bar over the batches
    (see :mod:`netxray._progress`; ``None``: when the work is long and someone is watching).
    """
    if not isinstance(method, _Method | FiniteDifference):
        raise TypeError(f"method must be an attribution method object, got {type(method).__name__}")
    if isinstance(target, str) and target not in ("pred", "label"):
        raise ValueError(f"target must be 'pred', 'label' or an int, got {target!r}")
    if not isinstance(target, str | int | np.integer) or isinstance(target, bool):
        raise TypeError(
            "attribute_dataset takes target='pred', 'label' or one int for every sample"
        )
    if n_classes is not None and n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    if "additional_forward_args" in kwargs:
        raise ValueError(
            "attribute_dataset builds additional_forward_args from each batch: put the extra "
            "model inputs in dict batches (they are passed by keyword), not in kwargs"
        )
    from netxray._progress import count_batches, counted
    from netxray.batches import read_batches

    fmt = BatchFormat(labels=labels, mask=mask, output=output)
    acc = _Sums(n_classes)
    neuron = isinstance(method, _NeuronMethod)
    first: tuple[str, str | None, dict[str, Any], torch.dtype] | None = None
    with counted(read_batches(data, batch_size, fmt), desc=type(method).__name__,
                 total=count_batches(data, batch_size), progress=progress) as batches:
        for b in batches:
            first = _attribute_batch(method, b, acc, first, target=target, neuron=neuron,
                                     input_key=input_key, output=output, on_batch=on_batch,
                                     kwargs=kwargs)
    assert first is not None
    method_name, layer, params, dtype = first
    params.update({k: v for k, v in kwargs.items() if isinstance(v, int | float | str | bool)})
    tokens = None
    if acc.tokens is not None:
        tokens = TokenAttribution(
            **{f: getattr(acc.tokens, f) for f in ("token_ids", "counts", "sum", "sum_sq",
                                                     "sum_abs")},
            method=method_name, grouped_by=str(acc.grouped_by),
            target=str(target) if not neuron else "unit", layer=layer, params=dict(params),
        )
    mean_abs, mean, per_class = acc.means(dtype)
    return DatasetAttribution(
        mean_abs=mean_abs,
        mean=mean,
        class_mean_abs=per_class,
        class_counts=acc.counts,
        n_samples=acc.total,
        method=method_name,
        grouped_by=str(acc.grouped_by),
        target=str(target) if not neuron else "unit",
        layer=layer,
        params=params,
        tokens=tokens,
    )


def _attribute_batch(
    method: AnyMethod, b: Batch, acc: _Sums, first: Any, *, target: Any, neuron: bool,
    input_key: str | None, output: OutputSpec, on_batch: Any, kwargs: dict[str, Any],
) -> tuple[str, str | None, dict[str, Any], torch.dtype]:
    """Attribute one batch into ``acc``; return what describes the run (from the first)."""
    yb = b.labels
    if yb is not None and (yb.ndim != 1 or yb.is_floating_point()):
        raise ValueError(
            f"labels must be integer class ids shaped (batch,), got {yb.dtype} {tuple(yb.shape)}"
        )
    if target == "label" and yb is None:
        raise ValueError(
            "target='label' needs labels: pass (X, y), a loader yielding (x, y), or dict "
            "batches with a 'labels' entry (or labels= its key)"
        )
    if method.model is not None:
        b = b.to(method.model)
    bound, x, args = _plan(method, b, input_key, output)
    extra: dict[str, Any] = {"additional_forward_args": args} if args else {}
    if isinstance(method, _Perturbation) and b.mask is not None:
        extra["mask"] = b.mask  # padding is never occluded, and scores 0
    if neuron:
        attr = bound.attribute(x, **extra, **kwargs)
    else:
        t = yb.to(x.device) if target == "label" else target  # type: ignore[union-attr]
        attr = bound.attribute(x, target=t, **extra, **kwargs)
    if on_batch is not None:
        on_batch(attr, b)
    if first is None:  # keep what describes the run, not the batch's tensors
        first = (attr.method, attr.layer, dict(attr.params), attr.values.dtype)
    if yb is not None:
        groups = yb.to(torch.long)
    elif attr.target is not None and target == "pred":
        groups = attr.target
    else:
        groups = _predicted(bound, x, args)
    acc.add(attr.values.detach(), x, b.mask, groups.detach().cpu(), "label" if yb is not None
            else "pred", attr.per_token)
    return first


class _Sums:
    """Running float64 sums per feature and per class; rows are samples, or real tokens for
    token attributions (then also a :class:`TokenAttribution` per token id)."""

    def __init__(self, n_classes: int | None) -> None:
        self.n_classes = n_classes
        self.sum_abs: torch.Tensor | None = None
        self.sum_signed: torch.Tensor | None = None
        self.class_sum: torch.Tensor | None = None
        self.counts = torch.zeros(n_classes or 0, dtype=torch.long)  # samples per class
        self.rows = torch.zeros(n_classes or 0, dtype=torch.long)  # rows per class
        self.total = 0
        self.total_rows = 0
        self.feat: tuple[int, ...] = ()
        self.per_token: bool | None = None
        self.grouped_by: str | None = None
        self.tokens: TokenAttribution | None = None

    def _grow(self, top: int) -> None:
        if top > self.counts.shape[0]:
            extra = top - self.counts.shape[0]
            self.counts = torch.cat([self.counts, torch.zeros(extra, dtype=torch.long)])
            self.rows = torch.cat([self.rows, torch.zeros(extra, dtype=torch.long)])
        assert self.class_sum is not None
        if top > self.class_sum.shape[0]:
            c = self.class_sum
            grow = torch.zeros((top - c.shape[0], c.shape[1]), dtype=c.dtype, device=c.device)
            self.class_sum = torch.cat([c, grow])

    def add(self, v: Any, x: torch.Tensor, mask: torch.Tensor | None, groups: torch.Tensor,
            grouped_by: str, one_per_token: bool = False) -> None:
        """``one_per_token``: ``v`` ``(batch, seq)`` is a score per token already."""
        if isinstance(v, tuple):
            raise ValueError("attribute_dataset takes one input tensor per batch, not a tuple")
        if self.grouped_by is not None and grouped_by != self.grouped_by:
            raise ValueError("some batches have labels and some do not; pass labels for all or none")
        self.grouped_by = grouped_by
        if int(groups.min()) < 0:
            raise ValueError(f"class labels must be >= 0, got {int(groups.min())}")
        top = int(groups.max()) + 1
        if self.n_classes is not None and top > self.n_classes:
            raise ValueError(
                f"class {top - 1} found but n_classes={self.n_classes}; raise n_classes"
            )
        per_token = (
            not x.is_floating_point() and x.ndim == 2 and (v.ndim >= 3 or one_per_token)
            and tuple(v.shape[:2]) == tuple(x.shape)
        )
        if self.per_token is not None and per_token != self.per_token:
            raise ValueError("batches differ in kind: some attribute tokens and some do not")
        self.per_token = per_token
        if per_token:
            real = (torch.ones(x.shape, dtype=torch.bool) if mask is None else mask.bool()).to(v.device)
            rows = v[real].flatten(1) if v.ndim >= 3 else v[real][:, None]
            row_groups = groups.to(v.device)[:, None].expand(x.shape)[real]
            scores = v.reshape(*x.shape, -1).sum(-1)[real]
            k = max(self.n_classes or 0, top, 0 if self.tokens is None else self.tokens.n_classes)
            table = token_table(x[real], scores, row_groups, k, method="", grouped_by="",
                                target="")
            self.tokens = table if self.tokens is None else self.tokens.merge(table)
        else:
            rows = v.flatten(1)
            row_groups = groups.to(v.device)
        if self.sum_abs is None:
            self.feat = tuple(v.shape[2:] if per_token else v.shape[1:])
            self.sum_abs = torch.zeros(rows.shape[1], dtype=torch.float64, device=v.device)
            self.sum_signed = torch.zeros_like(self.sum_abs)
            self.class_sum = torch.zeros(
                (max(self.n_classes or 0, top), rows.shape[1]), dtype=torch.float64, device=v.device
            )
        elif rows.shape[1] != self.sum_abs.shape[0]:
            raise ValueError("batches differ in sample shape; pass samples of one shape")
        self._grow(max(top, self.counts.shape[0]))
        a = rows.abs().double()
        self.sum_abs += a.sum(0)
        self.sum_signed += rows.double().sum(0)  # type: ignore[operator]
        self.class_sum.index_add_(0, row_groups, a)  # type: ignore[union-attr]
        self.counts += torch.bincount(groups.cpu(), minlength=self.counts.shape[0])
        self.rows += torch.bincount(row_groups.cpu(), minlength=self.rows.shape[0])
        self.total += int(groups.shape[0])
        self.total_rows += int(rows.shape[0])

    def means(self, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert self.sum_abs is not None and self.sum_signed is not None
        assert self.class_sum is not None
        n = max(self.total_rows, 1)
        mean_abs = (self.sum_abs / n).to(dtype).cpu().view(self.feat)
        mean = (self.sum_signed / n).to(dtype).cpu().view(self.feat)
        per = self.class_sum.cpu() / self.rows.clamp(min=1).unsqueeze(1).double()
        return mean_abs, mean, per.to(dtype).view(-1, *self.feat)
