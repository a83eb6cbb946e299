"""Input checks shared by every layer: each error names the problem and the fix."""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._warnings import NetxrayWarning

# Modules that compute differently in train and eval mode.
MODE_DEPENDENT = (
    nn.modules.dropout._DropoutNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.AlphaDropout,
)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's tensors live (CPU for a model with no parameters or buffers)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of the model's parameters (the default dtype if it has none)."""
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()


def check_eval_mode(model: nn.Module, *, allow_train: bool = False) -> None:
    """Refuse a model in training mode whose dropout/batch-norm would change the results.

    Running such a model would also update batch-norm's running statistics behind the
    user's back. A plain MLP in training mode is fine: its output does not depend on mode.
    """
    if allow_train:
        return
    culprits = [  # named and typed: a Sequential's "2" alone would read as a count
        f"{name!r} ({type(m).__name__})" if name else f"the model itself ({type(m).__name__})"
        for name, m in model.named_modules()
        if m.training and isinstance(m, MODE_DEPENDENT)
    ]
    if culprits:
        shown = ", ".join(culprits[:5]) + (f", ... ({len(culprits)} in all)"
                                           if len(culprits) > 5 else "")
        raise ValueError(
            f"the model is in training mode and has mode-dependent layers: {shown}. "
            "Dropout would make results random and batch-norm would update its running "
            "statistics. Call model.eval() first (or pass allow_train=True if you mean it)."
        )


def check_initialised(model: nn.Module | None, what: str) -> None:
    """Refuse a model with uninitialised lazy parameters (``nn.LazyLinear``...): their shapes,
    and so anything read from them, are unknown until one batch has run (None: no model)."""
    lazy = [n for n, p in model.named_parameters() if nn.parameter.is_lazy(p)] if model is not None else []
    if lazy:
        more = ", ..." if len(lazy) > 3 else ""
        raise ValueError(f"the model has uninitialised lazy parameters ({', '.join(lazy[:3])}"
                         f"{more}); run one batch through it (model(x)) before {what}")


def check_finite(x: torch.Tensor | np.ndarray, what: str) -> None:
    """Raise if ``x`` holds NaN or Inf, saying where the first one is."""
    t = torch.as_tensor(x)
    if not (t.is_floating_point() or t.is_complex()):
        return
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        n = int(bad.sum())
        raise ValueError(
            f"{what} contain {n} non-finite value(s) (NaN or Inf), the first at index {first}; "
            "clean or impute them before calling netxray"
        )


def check_nonempty(x: torch.Tensor | np.ndarray, what: str) -> None:
    if x.ndim == 0:
        raise ValueError(f"{what} must have a batch dimension, got a scalar; pass shape (batch, ...)")
    if x.shape[0] == 0:
        raise ValueError(f"{what} are empty (shape {tuple(x.shape)}); pass at least one sample")


def as_input_tensor(
    x: torch.Tensor | np.ndarray, model: nn.Module, what: str = "inputs"
) -> torch.Tensor:
    """Inputs as a tensor on the model's device, in its float dtype; checked finite and non-empty."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    check_nonempty(x, what)
    if x.is_floating_point():
        x = x.to(device=model_device(model), dtype=model_dtype(model))
        if not bool(torch.isfinite(x.sum())):  # one reduction; the exact scan only on suspicion
            check_finite(x, what)
    else:
        x = x.to(device=model_device(model))
    return x


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Restore every module's train/eval flag and every parameter's requires_grad on exit.

    One pass over the modules, restoring only what changed: it runs on every attribution
    call, and a small model's whole pass takes under a millisecond. netxray's own backward
    passes use ``torch.autograd.grad``, which never accumulates into ``.grad``.
    """
    mods = list(model.modules())
    modes = [m.training for m in mods]
    params = [p for m in mods for p in m._parameters.values() if p is not None]
    flags = [p.requires_grad for p in params]
    try:
        yield
    finally:
        for m, mode in zip(mods, modes, strict=True):
            if m.training != mode:
                m.training = mode
        for p, flag in zip(params, flags, strict=True):
            if p.requires_grad != flag:
                p.requires_grad_(flag)


# --------------------------------------------------------------------------------------
# the one input check: can the model take these inputs, and these labels?
# --------------------------------------------------------------------------------------

# What torch says when a tensor has the wrong shape for a layer (Linear, Conv, RNN, norms,
# reshapes, embeddings); any other error from the model is its own and propagates as is.
_SHAPE_ERRORS = re.compile(
    r"shapes cannot be multiplied|mat1 dim|size mismatch|expected input|Expected \d+D"
    r"|to have \d+ channels|must match the size of tensor|must be equal to input_size"
    r"|Kernel size can't be greater|don't multiply up|is invalid for input of size"
    r"|should contain \d+ elements|normalized_shape|index out of range in self"
    r"|Expected .*input|input\.size\(",
)


def _first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first module (in definition order) that owns parameters: what inputs meet first."""
    for name, m in model.named_modules():
        if any(True for _ in m.parameters(recurse=False)):
            return name, m
    return None


def expected_input(model: nn.Module) -> str | None:
    """The input shape the model's first layer takes, in words, or None if it cannot tell."""
    found = _first_layer(model)
    if found is None:
        return None
    name, m = found
    where = f"its first layer {name!r} is {type(m).__name__}" if name else f"it is a {type(m).__name__}"
    if isinstance(m, nn.Linear):
        return f"(batch, {m.in_features}) ({where} with in_features={m.in_features})"
    if isinstance(m, nn.Bilinear):
        return f"(batch, {m.in1_features}) and (batch, {m.in2_features}) ({where})"
    if isinstance(m, nn.modules.conv._ConvNd):
        dims = {1: "length", 2: "height, width", 3: "depth, height, width"}[len(m.kernel_size)]
        return f"(batch, {m.in_channels}, {dims}) ({where} with in_channels={m.in_channels})"
    if isinstance(m, nn.Embedding | nn.EmbeddingBag):
        return (f"(batch, length) integer ids in 0..{m.num_embeddings - 1} "
                f"({where} with num_embeddings={m.num_embeddings})")
    if isinstance(m, nn.RNNBase):
        order = "(batch, length, {})" if m.batch_first else "(length, batch, {})"
        return f"{order.format(m.input_size)} ({where} with input_size={m.input_size})"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return f"(batch, {m.num_features}, ...) ({where} with num_features={m.num_features})"
    if isinstance(m, nn.LayerNorm):
        last = ", ".join(str(s) for s in m.normalized_shape)
        return f"(..., {last}) ({where} with normalized_shape={tuple(m.normalized_shape)})"
    return None


def output_tensor(out: Any) -> torch.Tensor | None:
    """The logits in a model's output: a tensor, its ``logits`` (a dict's key, a HF
    ``ModelOutput``'s or any object's attribute), or the first tensor inside; None if none."""
    if isinstance(out, torch.Tensor):
        return out
    logits = out.get("logits") if isinstance(out, Mapping) else getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, Mapping):
        out = list(out.values())
    if isinstance(out, tuple | list):
        for item in out:
            found = output_tensor(item)
            if found is not None:
                return found
    return None


def _shape_of(inputs: Any) -> str:
    if isinstance(inputs, torch.Tensor | np.ndarray):
        return str(tuple(inputs.shape))
    if isinstance(inputs, dict):
        return "{" + ", ".join(f"{k}: {_shape_of(v)}" for k, v in inputs.items()) + "}"
    if isinstance(inputs, tuple | list):
        return "(" + ", ".join(_shape_of(v) for v in inputs) + ")"
    return type(inputs).__name__


def _head(x: Any, n: int, model: nn.Module) -> Any:
    """The first ``n`` samples of a tensor, array, tuple/list of them or dict of them."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        x = x[:n]
        if x.is_floating_point():
            return x.to(device=model_device(model), dtype=model_dtype(model))
        return x.to(device=model_device(model))
    if isinstance(x, dict):
        return {k: _head(v, n, model) for k, v in x.items()}
    if isinstance(x, tuple | list):
        return type(x)(_head(v, n, model) for v in x)
    return x


def shape_error(model: nn.Module, inputs: Any, error: BaseException) -> ValueError | None:
    """The clear error for torch's shape error ``error`` raised by ``model`` on ``inputs``:
    "the model cannot take inputs of shape (50, 5); it expects (batch, 4) ...", or ``None``
    when ``error`` is not a shape error (the model's own errors propagate as they are)."""
    if not isinstance(error, RuntimeError | IndexError) or not _SHAPE_ERRORS.search(str(error)):
        return None
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    expects = expected_input(model)
    hint = f"; it expects {expects}" if expects else ""
    return ValueError(
        f"the model cannot take inputs of shape {_shape_of(inputs)}{hint}. torch says: "
        f"{message}. Pass data shaped like the data the model was built for "
        "(the same number of features, channels and sizes)"
    )


#: The dict entry that holds token ids (HF's convention, which netxray's text data follows).
TOKEN_IDS = "input_ids"

# torch's error for an nn.Embedding / EmbeddingBag given floats (or bools) as indices
_FLOAT_IDS = re.compile(r"'indices'.*scalar types.*checking arguments for embedding")


def token_ids_error(dtype: torch.dtype | None, where: str) -> ValueError:
    """The error for token ids that are not integers (``dtype``), which torch reports from
    deep inside the model as "Expected tensor for argument #1 'indices' ..."."""
    got = "floating point" if dtype is None else str(dtype).removeprefix("torch.")
    return ValueError(
        f"token ids must be integers (got {got}); {where}. Pass them as integer ids, as a "
        "tokenizer returns them (ids.long(), or an np.int64 array); rounding floats back "
        "to ids only hides where they became floats"
    )


def float_ids_error(inputs: Any, error: BaseException, model: nn.Module | None = None
                    ) -> ValueError | None:
    """:func:`token_ids_error` when ``error`` is torch's refusal of non-integer indices by an
    embedding layer of ``model``, run on ``inputs``; else ``None``."""
    if not isinstance(error, RuntimeError) or not _FLOAT_IDS.search(str(error)):
        return None
    dtype = next((t.dtype for t in _tensors(inputs) if not _is_int(t.dtype)), None)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag)
             ] if model is not None else []
    shown = f" ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})" if names else ""
    return token_ids_error(dtype, f"an embedding layer of the model{shown} was given them")


def _is_int(dtype: torch.dtype) -> bool:
    return not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)


def _tensors(inputs: Any) -> Iterator[torch.Tensor]:
    """The tensors of a tensor, a tuple/list of them or a dict of them."""
    if isinstance(inputs, torch.Tensor):
        yield inputs
    elif isinstance(inputs, dict):
        for v in inputs.values():
            yield from _tensors(v)
    elif isinstance(inputs, tuple | list):
        for v in inputs:
            yield from _tensors(v)


@contextlib.contextmanager
def explained_shape_errors(model: nn.Module, inputs: Any) -> Iterator[None]:
    """Turn torch's shape errors inside the block into :func:`shape_error`'s ``ValueError``,
    and an embedding's refusal of float ids into :func:`token_ids_error`'s.

    Costs nothing when the model runs: for a loop over batches that should not pay for an
    extra probe (``activations``); the error names the batch's shape.
    """
    try:
        yield
    except (RuntimeError, IndexError) as e:
        clear = float_ids_error(inputs, e, model) or shape_error(model, inputs, e)
        if clear is None:
            raise
        raise clear from e


def unbatched_error(shape: tuple[int, ...], out_shape: tuple[int, ...], rows: int) -> ValueError:
    """The error for 1-D inputs whose output is not one row per sample (one unbatched sample)."""
    return ValueError(
        f"the model's output has shape {out_shape} for a batch of {rows} samples; netxray needs "
        f"one row per sample. The inputs have shape {shape}: if that is one sample, pass "
        f"x[None] (shape {(1, *shape)}); if it is {shape[0]} samples of one feature, pass "
        "x[:, None]."
    )


def probe_model(model: nn.Module, inputs: Any, *, n: int = 8) -> torch.Tensor:
    """Run ``model`` on the first ``n`` samples of ``inputs``; return its output tensor.

    ``inputs``: a tensor or array ``(batch, ...)`` (the call ``model(x)``), a tuple/list of
    them (``model(*x)``) or a dict of them (``model(**x)``). A shape mismatch becomes a
    ``ValueError`` that says what the model takes ("the model cannot take inputs of shape
    (50, 5); it expects (batch, 4) ..."), instead of torch's "mat1 and mat2 shapes cannot be
    multiplied"; a single unbatched sample ``(features,)`` (whose output is not one row per
    sample) is refused with the fix (``x[None]``). Runs in eval mode without gradients; the
    model's state is left as it was (batch-norm's running statistics included). Cost: one
    forward pass of ``n`` samples.
    """
    head = _head(inputs, n, model)
    with explained_shape_errors(model, inputs), preserved_state(model), torch.no_grad():
        model.eval()
        if isinstance(head, dict):
            out = model(**head)
        elif isinstance(head, tuple | list):
            out = model(*head)
        else:
            out = model(head)
    t = output_tensor(out)
    if t is None:
        raise ValueError(
            f"the model returned a {type(out).__name__} with no tensor in it; netxray needs a "
            "model that returns its outputs (logits) as a tensor"
        )
    if isinstance(head, torch.Tensor) and head.ndim == 1:
        rows = int(head.shape[0])
        if t.ndim < 2 or int(t.shape[0]) != rows:
            raise unbatched_error(tuple(inputs.shape), tuple(t.shape), rows)
    return t


def n_classes_of(outputs: torch.Tensor) -> int:
    """How many classes a ``(batch, classes)`` output scores (1 for ``(batch,)``)."""
    return 1 if outputs.ndim < 2 else int(outputs.shape[-1])


def check_labels(
    labels: torch.Tensor | np.ndarray, n_classes: int, *, what: str = "label"
) -> None:
    """Refuse integer labels outside ``0..n_classes-1``: "label 7 but the model outputs 3 classes".

    Float labels (regression targets) are not class indices and pass unchecked.
    """
    y = torch.as_tensor(labels)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool or y.numel() == 0:
        return
    out_of_range = (y < 0) | (y >= n_classes)
    if not bool(out_of_range.any()):
        return
    flat = y.reshape(-1)
    bad = int(flat[out_of_range.reshape(-1).nonzero()[0, 0]])  # the first, in data order
    count = int(out_of_range.sum())
    plural = "class" if n_classes == 1 else "classes"
    raise ValueError(
        f"{what} {bad} but the model outputs {n_classes} {plural}"
        + (f" ({count} {what}s out of range)" if count > 1 else "")
        + f"; {what}s must be 0..{n_classes - 1}. Check that the data belongs to this model, "
        "or give the model's last layer one output per class"
    )


def check_model_input(
    model: nn.Module, inputs: Any, labels: Any = None, *, n: int = 8
) -> int:
    """The one input check: the model runs on ``inputs`` and can score ``labels``.

    Runs :func:`probe_model` on the first ``n`` samples, then checks that there is one label
    per sample and each is a class the model outputs (:func:`check_labels`). Returns the
    number of classes the model outputs. Raises ``ValueError`` naming the problem and fix.
    """
    out = probe_model(model, inputs, n=n)
    k = n_classes_of(out)
    if labels is not None:
        first = inputs
        while isinstance(first, tuple | list | dict):
            first = next(iter(first.values() if isinstance(first, dict) else first))
        y = torch.as_tensor(labels) if isinstance(labels, np.ndarray | torch.Tensor) else None
        if y is not None and isinstance(first, torch.Tensor | np.ndarray) and y.ndim >= 1:
            if y.shape[0] != first.shape[0]:
                raise ValueError(
                    f"{first.shape[0]} input samples but {y.shape[0]} labels; pass one label "
                    "per sample"
                )
        if y is not None:
            check_labels(y, k)
    return k


# --------------------------------------------------------------------------------------
# results that came out NaN, and work that cannot fit
# --------------------------------------------------------------------------------------


def nonfinite_parameters(model: nn.Module) -> list[str]:
    """The names of the model's floating parameters and buffers that hold NaN or Inf."""
    return [
        name
        for name, t in (*model.named_parameters(), *model.named_buffers())
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


def warn_nonfinite(
    model: nn.Module,
    values: Sequence[torch.Tensor | np.ndarray],
    method: str,
    what: str = "the attributions contain",
) -> None:
    """Warn (:class:`NetxrayWarning`) when ``values`` hold NaN/Inf, naming the parameters
    or buffers that do; ``what`` is the sentence's subject ("the decision surface contains").

    Costs one reduction per value when everything is finite.
    """
    tensors = [torch.as_tensor(v) for v in values]
    # a finite sum means every value is finite (any NaN/Inf makes it NaN/Inf); only a sum
    # that overflowed needs the element-wise look
    if all(bool(torch.isfinite(v.sum())) or bool(torch.isfinite(v).all()) for v in tensors):
        return
    bad = nonfinite_parameters(model)
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        why = f"the model's parameter(s) {shown} hold NaN/Inf"
        fix = "fix or reload those weights"
    else:
        why = "the model's outputs or gradients are NaN/Inf at these inputs"
        fix = "check the model's outputs (overflow, log of 0, division by 0)"
    warnings.warn(
        f"{method}: {what} NaN/Inf because {why}; {fix}",
        NetxrayWarning,
        stacklevel=3,
    )


#: Work that must be held at once may take up to this fraction of the memory (the model's
#: activations, and for attribution the backward pass, need several times that on top).
MEMORY_FRACTION = 0.25


def memory_bytes(device: torch.device | str = "cpu") -> int:
    """The memory one computation may take: the accelerator's total, or the machine's RAM."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 16 << 30


def gib(b: float) -> str:
    """A byte count for messages: GiB from 1 GiB up, else MiB."""
    return f"{b / (1 << 30):.3g} GiB" if b >= 1 << 30 else f"{b / (1 << 20):.3g} MiB"
