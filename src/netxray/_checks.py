"""Input checks shared by every layer: each error names the problem and the fix."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

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
    culprits = [
        name or type(m).__name__
        for name, m in model.named_modules()
        if m.training and isinstance(m, MODE_DEPENDENT)
    ]
    if culprits:
        shown = ", ".join(culprits[:5]) + (" ..." if len(culprits) > 5 else "")
        raise ValueError(
            f"the model is in training mode and has mode-dependent layers ({shown}): "
            "dropout would make results random and batch-norm would update its running "
            "statistics. Call model.eval() first (or pass allow_train=True if you mean it)."
        )


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
