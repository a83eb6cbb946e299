"""The padding masks PyTorch's transformer encoders are given, read as they are called.

``nn.TransformerEncoder`` turns a padded batch into nested tensors only on its fast path
(eval, no gradients, no ``mask=``, batch-first, right padding); otherwise its layers output
``(batch, seq, ...)`` tensors whose padded positions hold values computed from padding, and
the only trace of where the padding is, is the ``src_key_padding_mask`` argument (True or
-inf: padding) the encoder and each of its layers receive. Forward pre-hooks read it there,
so statistics leave padding out whichever path ran, with or without gradients.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from netxray.layers import _CALL_NAME

#: Modules whose ``src_key_padding_mask`` marks the padding of their own sequence.
ENCODERS = (nn.TransformerEncoder, nn.TransformerEncoderLayer)
_ARG = "src_key_padding_mask"
#: a float padding mask this negative or lower hides a key (softmax gives it weight 0)
_HIDDEN = -1e4


def _batch_first(module: nn.Module) -> bool:
    layer = module.layers[0] if isinstance(module, nn.TransformerEncoder) else module
    return bool(layer.self_attn.batch_first)


def _padding_arg(sig: inspect.Signature | None, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    if sig is None:
        return None
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:  # a forward of another signature: nothing to read
        return None
    return bound.arguments.get(_ARG)


def _signature(module: nn.Module) -> inspect.Signature | None:
    try:
        return inspect.signature(module.forward)
    except (TypeError, ValueError):
        return None


def real_tokens(path: str, pad: torch.Tensor) -> torch.Tensor:
    """A padding mask (bool True, or float -inf / <= -1e4: padding) as a bool real-token
    mask; a float mask of other values is a soft bias, not padding, and is refused."""
    if pad.dtype == torch.bool:
        return ~pad
    if not pad.is_floating_point():
        return pad == 0
    hidden = pad <= _HIDDEN
    if not bool((hidden | (pad == 0)).all()):
        raise ValueError(
            f"{path!r} receives a float src_key_padding_mask holding values other than 0 and "
            "-inf, so netxray cannot tell its padding; pass a bool mask (True: padding)"
        )
    return ~hidden


class EncoderMasks:
    """Per batch, the real-token mask each encoder covering a recorded layer was given.

    ``names`` are the recorded layers' module paths (or calls, ``relu#1``); a layer is
    covered by an encoder when it is the encoder or inside it. The innermost covering
    encoder that got a mask wins: on the fast path the layers get none (their input is
    nested) and the encoder's applies.
    """

    def __init__(self, model: nn.Module, names: Iterable[str]) -> None:
        self.encoders = {p: m for p, m in model.named_modules() if isinstance(m, ENCODERS)}
        self.cover: dict[str, list[str]] = {}
        for name in names:
            call = _CALL_NAME.fullmatch(name)
            name = call[1] if call and name not in self.encoders else name
            paths = [p for p in self.encoders if p == name or name.startswith(f"{p}.")
                     or not p]
            if paths:
                self.cover[name] = sorted(paths, key=len, reverse=True)
        self.sigs = {p: _signature(self.encoders[p]) for paths in self.cover.values()
                     for p in paths}
        self.masks: dict[str, torch.Tensor] = {}
        self.batch_mask: torch.Tensor | None = None

    def begin(self, batch_mask: torch.Tensor | None) -> None:
        """A new batch, with the attention mask it carries (bool ``(batch, seq)``) or None."""
        self.masks.clear()
        self.batch_mask = batch_mask

    def mask_for(self, name: str) -> tuple[torch.Tensor, bool] | None:
        """``(real-token mask (batch, seq), batch_first)`` for the layer at module path
        ``name`` (or one of its calls), or None when no covering encoder got a padding mask
        in this batch."""
        call = _CALL_NAME.fullmatch(name)
        if call and name not in self.cover:
            name = call[1]
        for p in self.cover.get(name, ()):
            if p in self.masks:
                return self.masks[p], _batch_first(self.encoders[p])
        return None

    def _seen(self, path: str, module: nn.Module, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        pad = _padding_arg(self.sigs[path], args, kwargs)
        if not isinstance(pad, torch.Tensor):
            self.masks.pop(path, None)  # this call has no padding mask (the fast path's layers)
            return
        if pad.ndim != 2:
            raise ValueError(
                f"{path!r} receives a src_key_padding_mask of shape {tuple(pad.shape)}; netxray "
                "reads (batch, seq) padding masks only"
            )
        real = real_tokens(path, pad.detach())
        known = self.batch_mask
        if known is not None and known.shape == real.shape and not torch.equal(
                known.cpu(), real.cpu()):
            raise ValueError(
                f"the batch's attention mask (mask=...) and the src_key_padding_mask {path!r} "
                "receives disagree on which tokens are real (that mask marks padding with "
                "True); pass mask=lambda batch: ~padding_mask, or mask=None to use the "
                "encoder's own"
            )
        self.masks[path] = real

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        """Pre-hooks on the encoders that cover a recorded layer, removed on exit."""
        handles = []
        try:
            for p in self.sigs:
                def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                        p: str = p) -> None:
                    self._seen(p, module, args, kwargs)

                handles.append(self.encoders[p].register_forward_pre_hook(pre, with_kwargs=True))
            yield
        finally:
            for h in handles:
                h.remove()


def refuse_sequence_first(name: str) -> None:
    """A training watch takes outputs as batch-first: a sequence-first encoder's padded
    ``(seq, batch, ...)`` outputs would be read with time steps as samples."""
    raise ValueError(
        f"watched layer {name!r} is inside a sequence-first transformer encoder given a "
        "src_key_padding_mask; watch reads batch-first outputs only: build the encoder "
        "layers with batch_first=True, or leave its layers out (layers=...)"
    )


def watched_encoders(model: nn.Module, names: Iterable[str],
                     stack: contextlib.ExitStack) -> EncoderMasks | None:
    """A training watch's :class:`EncoderMasks`, hooked until ``stack`` closes; None when no
    transformer encoder covers a watched layer (a model without one pays nothing)."""
    encoders = EncoderMasks(model, names)
    if not encoders.sigs:
        return None
    stack.enter_context(encoders.hooks())
    return encoders
