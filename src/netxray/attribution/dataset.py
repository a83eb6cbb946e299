"""Attribution over a whole dataset: :func:`attribute_dataset` attributes and reduces one
batch at a time, so memory does not grow with the dataset."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from netxray.attribution._engine import _Method
from netxray.attribution.layer import _NeuronMethod
from netxray.attribution.perturbation import FiniteDifference
from netxray.attribution.results import DatasetAttribution

AnyMethod = _Method | FiniteDifference


def attribute_dataset(
    method: AnyMethod,
    data: Any,
    *,
    target: int | Literal["pred", "label"] = "pred",
    batch_size: int = 1024,
    n_classes: int | None = None,
    **kwargs: Any,
) -> DatasetAttribution:
    """Mean |attribution| per feature over a whole dataset, overall and per class.

    ``data``: a tensor/array, an ``(X, y)`` pair, a DataLoader or any iterable of batches.
    ``target``: ``"pred"`` (explain each sample's predicted class), ``"label"`` (its true
    label; needs y) or an int. Samples are grouped by their true label when ``data`` has
    labels, else by the predicted class. Batches are attributed and reduced one at a time,
    so memory does not grow with the dataset. ``kwargs`` go to ``method.attribute`` (e.g.
    ``n_steps=``, or ``unit=`` for neuron methods, which take no target).
    """
    from netxray.capture import iter_batches

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
    neuron = isinstance(method, _NeuronMethod)
    sum_abs = sum_signed = class_sum = None
    counts = torch.zeros(n_classes or 0, dtype=torch.long)
    total = 0
    grouped_by = None
    first: tuple[str, str | None, dict[str, Any], torch.dtype] | None = None
    for xb, yb in iter_batches(data, batch_size):
        if yb is not None and (yb.ndim != 1 or yb.is_floating_point()):
            raise ValueError(
                f"labels must be integer class ids shaped (batch,), got {yb.dtype} {tuple(yb.shape)}"
            )
        if target == "label" and yb is None:
            raise ValueError("target='label' needs labels: pass (X, y) or a loader yielding (x, y)")
        this = "label" if yb is not None else "pred"
        if grouped_by is not None and this != grouped_by:
            raise ValueError(
                "some batches have labels and some do not; pass labels for all or none"
            )
        grouped_by = this
        if neuron:
            attr = method.attribute(xb, **kwargs)
        else:
            t = yb if target == "label" else target
            attr = method.attribute(xb, target=t, **kwargs)
        if first is None:  # keep what describes the run, not the batch's tensors
            first = (attr.method, attr.layer, dict(attr.params), attr.values.dtype)
        if yb is not None:
            groups = yb.to(torch.long)
        elif attr.target is not None and target == "pred":
            groups = attr.target
        else:
            groups = method._predict(attr.inputs)
        groups = groups.detach().cpu()
        if int(groups.min()) < 0:
            raise ValueError(f"class labels must be >= 0, got {int(groups.min())}")
        top = int(groups.max()) + 1
        if n_classes is not None and top > n_classes:
            raise ValueError(f"class {top - 1} found but n_classes={n_classes}; raise n_classes")
        v = attr.values.detach()
        a = v.abs().flatten(1)
        if sum_abs is None:
            feat = tuple(v.shape[1:])
            sum_abs = torch.zeros(a.shape[1], dtype=torch.float64, device=v.device)
            sum_signed = torch.zeros_like(sum_abs)
            class_sum = torch.zeros(
                (max(n_classes or 0, top), a.shape[1]), dtype=torch.float64, device=v.device
            )
        elif a.shape[1] != sum_abs.shape[0]:
            raise ValueError("batches differ in sample shape; pass samples of one shape")
        if top > class_sum.shape[0]:
            grow = torch.zeros(
                (top - class_sum.shape[0], a.shape[1]),
                dtype=class_sum.dtype,
                device=class_sum.device,
            )
            class_sum = torch.cat([class_sum, grow])
        if top > counts.shape[0]:
            counts = torch.cat([counts, torch.zeros(top - counts.shape[0], dtype=torch.long)])
        sum_abs += a.sum(0).double()
        sum_signed += v.flatten(1).sum(0).double()
        class_sum.index_add_(0, groups.to(v.device), a.double())
        counts += torch.bincount(groups, minlength=counts.shape[0])
        total += v.shape[0]
    assert (
        sum_abs is not None
        and sum_signed is not None
        and class_sum is not None
        and first is not None
    )
    method_name, layer, first_params, dtype = first
    mean_abs = (sum_abs / total).to(dtype).cpu().view(feat)
    mean = (sum_signed / total).to(dtype).cpu().view(feat)
    per_class = (class_sum.cpu() / counts.clamp(min=1).unsqueeze(1).double()).to(dtype)
    params = first_params
    params.update({k: v for k, v in kwargs.items() if isinstance(v, int | float | str | bool)})
    return DatasetAttribution(
        mean_abs=mean_abs,
        mean=mean,
        class_mean_abs=per_class.view(-1, *feat),
        class_counts=counts,
        n_samples=total,
        method=method_name,
        grouped_by=str(grouped_by),
        target=str(target) if not neuron else "unit",
        layer=layer,
        params=params,
    )
