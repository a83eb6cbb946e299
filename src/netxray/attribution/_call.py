"""How a call reaches the model: inputs as a tuple, ``additional_forward_args``, and the
checks that keep an answer from being silently wrong.

Captum's calling convention: ``inputs`` is a tensor or a tuple of tensors (the model is
called as ``model(*inputs, *additional_forward_args)``), and every tensor among the
additional arguments is one row per sample, repeated alongside the inputs when a method
stacks many points per sample. Methods work on the tuple form; :func:`_untuple` gives a
single tensor back for a single-tensor call.

No answer beats a wrong one: :func:`_no_gradient` raises when no gradient reaches the
inputs (integer token ids, a cast inside the model, ``.detach()``) and names the embedding
layers to attribute to instead; :func:`_warn_nonfinite` warns when attributions come out
NaN/Inf and names the parameters that hold NaN/Inf; :func:`_check_rows` refuses, up front,
a pass whose inputs alone would not fit in memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import MEMORY_FRACTION as _MEMORY_FRACTION
from netxray._checks import as_input_tensor, model_device
from netxray._checks import gib as _gib
from netxray._checks import memory_bytes as _memory_bytes
from netxray._checks import warn_nonfinite as _warn_nonfinite  # noqa: F401  (re-exported)

Inputs = torch.Tensor | np.ndarray | tuple[torch.Tensor | np.ndarray, ...]
ForwardArgs = Any


# --------------------------------------------------------------------------- inputs and args


def _as_tuple(inputs: Inputs, model: nn.Module, floating: bool, method: str) -> tuple[
    tuple[torch.Tensor, ...], bool
]:
    """``(inputs as a tuple of tensors on the model's device, whether a tuple was given)``.

    ``floating``: the method differentiates w.r.t. the inputs themselves, so integer inputs
    are refused with the embedding layers to attribute to instead.
    """
    is_tuple = isinstance(inputs, tuple)
    items = inputs if is_tuple else (inputs,)
    if is_tuple and not items:
        raise ValueError("inputs is an empty tuple; pass a tensor or a tuple of tensors")
    xs = tuple(
        as_input_tensor(v, model, "inputs" if not is_tuple else f"inputs[{i}]")
        for i, v in enumerate(items)
    )
    n = xs[0].shape[0]
    for i, x in enumerate(xs):
        if x.shape[0] != n:
            raise ValueError(
                f"inputs[{i}] has {x.shape[0]} rows but inputs[0] has {n}; every input "
                "tensor is one row per sample"
            )
        if floating and not x.is_floating_point():
            where = "inputs" if not is_tuple else f"inputs[{i}]"
            raise ValueError(
                f"{method} differentiates w.r.t. the inputs, but {where} are {x.dtype} (token "
                f"ids?): no gradient reaches integers. {_embedding_advice(model)}"
            )
    return xs, is_tuple


def _untuple(values: tuple[torch.Tensor, ...], is_tuple: bool) -> Any:
    return values if is_tuple else values[0]


def _forward_args(args: ForwardArgs, model: nn.Module, n: int) -> tuple[Any, ...]:
    """``additional_forward_args`` as a tuple; tensors moved to the model's device and
    checked to hold one row per sample (they are repeated alongside the inputs)."""
    if args is None:
        return ()
    items = args if isinstance(args, tuple) else (args,)
    dev = model_device(model)
    out = []
    for i, a in enumerate(items):
        if isinstance(a, np.ndarray):
            a = torch.from_numpy(np.ascontiguousarray(a))
        if isinstance(a, torch.Tensor):
            a = a.to(dev)
            if a.ndim and a.shape[0] != n:
                raise ValueError(
                    f"additional_forward_args[{i}] has shape {tuple(a.shape)}: a tensor among "
                    f"them is one row per sample ({n} rows), as in Captum; pass other values "
                    "as plain Python objects or 0-d tensors"
                )
        out.append(a)
    return tuple(out)


def _rows_of(args: tuple[Any, ...], sl: slice | torch.Tensor) -> tuple[Any, ...]:
    """The rows ``sl`` (a slice, or row indices) of every per-sample tensor."""
    return tuple(a[sl] if isinstance(a, torch.Tensor) and a.ndim else a for a in args)


def _tile(args: tuple[Any, ...], k: int) -> tuple[Any, ...]:
    """Every per-sample tensor repeated ``k`` times, step-major (``cat([a] * k)``)."""
    if k == 1:
        return args
    return tuple(
        a.repeat(k, *([1] * (a.ndim - 1))) if isinstance(a, torch.Tensor) and a.ndim else a
        for a in args
    )


def _interleave(args: tuple[Any, ...], k: int) -> tuple[Any, ...]:
    """Every per-sample tensor repeated ``k`` times, sample-major (``repeat_interleave``)."""
    if k == 1:
        return args
    return tuple(
        a.repeat_interleave(k, dim=0) if isinstance(a, torch.Tensor) and a.ndim else a
        for a in args
    )


def _check_mask(mask: Any, values: torch.Tensor, what: str) -> torch.Tensor | None:
    """``mask`` as a ``(batch, seq)`` bool tensor on the values' device, checked: one flag
    per token (True: a real token), shaped like the first two dims of ``values``."""
    if mask is None:
        return None
    m = torch.as_tensor(mask).to(values.device)
    if values.ndim < 2 or tuple(m.shape) != tuple(values.shape[:2]):
        raise ValueError(
            f"mask has shape {tuple(m.shape)}; pass one flag per token, shaped like the first "
            f"two dims of {what} {tuple(values.shape[:2])} (e.g. the attention mask)"
        )
    return m.bool() if m.dtype != torch.bool else m


# --------------------------------------------------------------------------- the errors


def _embeddings(model: nn.Module) -> list[str]:
    """Dotted names of the model's ``nn.Embedding`` modules, word embeddings first."""
    names = [n for n, m in model.named_modules() if n and isinstance(m, nn.Embedding | nn.EmbeddingBag)]
    return sorted(names, key=lambda n: (0 if "word" in n or "wte" in n or "tok" in n else 1))


def _embedding_advice(model: nn.Module) -> str:
    names = _embeddings(model)
    if not names:
        return (
            "Pass floating-point inputs the model uses as they are, attribute to a layer "
            "(LayerIntegratedGradients(model, layer=...)), or use FiniteDifference"
        )
    shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
    return (
        f"Attribute to the embedding layer instead: LayerIntegratedGradients(model, "
        f"layer={names[0]!r}) (embedding layers: {shown}), or occlude tokens with "
        "Occlusion / FeatureAblation, which take token ids (baselines= the pad or mask id)"
    )


def _no_gradient(model: nn.Module, which: str) -> ValueError:
    """The error for a model whose output gets no gradient from ``which``."""
    return ValueError(
        f"no gradient reaches {which}: the model does not use them through autograd (token "
        "ids, a cast to an integer type, .detach() or torch.no_grad inside the model); the "
        f"attributions would be zeros, not an answer. {_embedding_advice(model)}"
    )


# --------------------------------------------------------------------------- memory limits


def _check_rows(rows: int, per_row: int, itemsize: int, device: torch.device, what: str) -> None:
    """Refuse, before any work, one pass that would stack ``rows`` rows of ``per_row``
    elements when those inputs alone exceed a quarter of the device's memory."""
    need = rows * per_row * itemsize
    limit = _memory_bytes(device) * _MEMORY_FRACTION
    if need > limit:
        fit = max(1, int(limit // max(1, per_row * itemsize)))
        raise ValueError(
            f"{what} would stack {rows} rows of {per_row} elements into one pass: {_gib(need)} "
            f"of inputs alone, more than a quarter of the {_gib(_memory_bytes(device))} this "
            f"{device.type} has; pass internal_batch_size <= {fit} (smaller passes give the "
            "same result)"
        )
