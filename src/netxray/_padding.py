"""The padding masks transformer encoders and decoders are given, read as they are called.

``nn.TransformerEncoder`` turns a padded batch into nested tensors only on its fast path
(eval, no gradients, no ``mask=``, batch-first, right padding); otherwise its layers output
padded tensors whose padded positions hold values computed from padding, and the only trace
of where the padding is, is the ``src_key_padding_mask`` argument (True or -inf: padding) the
encoder and each of its layers receive. Forward pre-hooks read it there, so statistics leave
padding out whichever path ran, with or without gradients.

A decoder runs on other tokens than the encoder (the targets), padded its own way: the
``tgt_key_padding_mask`` of ``nn.TransformerDecoder``, its layers and ``nn.Transformer``, or
the ``attention_mask`` a HuggingFace encoder-decoder hands its decoder (the model's
``decoder_attention_mask``; its encoder's is the model's ``attention_mask``). Layers inside a decoder use its mask, never the batch's (the
encoder's); a decoder given none in a batch that has one is refused. A layer outside every
encoder and decoder reads the batch's mask until a decoder starts, the decoder's after it
(a language-model head); one that ran before with sequences as long as the decoder's (a
target embedding) is refused when the two masks differ.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netxray.layers import _CALL_NAME

#: Modules whose ``src_key_padding_mask`` marks the padding of their own sequence.
ENCODERS = (nn.TransformerEncoder, nn.TransformerEncoderLayer)
DECODERS = (nn.TransformerDecoder, nn.TransformerDecoderLayer)
#: a float padding mask this negative or lower hides a key (softmax gives it weight 0)
_HIDDEN = -1e4


@dataclass(frozen=True)
class _Stack:
    """An encoder or decoder: the forward argument holding its padding mask, and whether that
    marks padding (PyTorch: True or -inf) or real tokens (HuggingFace: 1)."""

    module: nn.Module
    arg: str
    marks_padding: bool = True
    decoder: bool = False
    inside: bool = True  # its submodules run on its tokens (nn.Transformer: its output only)


def _hf_parts(model: nn.Module) -> dict[int, bool]:
    """The encoders and decoders (``id`` -> is a decoder) of the HuggingFace encoder-decoder
    models in ``model``."""
    found: dict[int, bool] = {}
    for m in model.modules():
        if getattr(getattr(m, "config", None), "is_encoder_decoder", False):
            for getter, decoder in (("get_encoder", False), ("get_decoder", True)):
                try:
                    part = getattr(m, getter)()
                except (AttributeError, NotImplementedError, TypeError):
                    continue
                if isinstance(part, nn.Module) and part is not m:
                    found[id(part)] = decoder
    return found


def _stacks(model: nn.Module) -> dict[str, _Stack]:
    hf = _hf_parts(model)
    found = {}
    for path, m in model.named_modules():
        if isinstance(m, ENCODERS):
            found[path] = _Stack(m, "src_key_padding_mask")
        elif isinstance(m, DECODERS):
            found[path] = _Stack(m, "tgt_key_padding_mask", decoder=True)
        elif isinstance(m, nn.Transformer):
            found[path] = _Stack(m, "tgt_key_padding_mask", decoder=True, inside=False)
        elif id(m) in hf:
            found[path] = _Stack(m, "attention_mask", marks_padding=False, decoder=hf[id(m)])
    return found


def _padding_arg(sig: inspect.Signature | None, arg: str, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    if sig is None:
        return kwargs.get(arg)
    try:
        bound = sig.bind_partial(*args, **kwargs)
    except TypeError:  # a forward of another signature: nothing to read
        return None
    return bound.arguments.get(arg, bound.arguments.get("kwargs", {}).get(arg))


def _signature(module: nn.Module) -> inspect.Signature | None:
    try:
        return inspect.signature(module.forward)
    except (TypeError, ValueError):
        return None


def real_tokens(path: str, pad: torch.Tensor, arg: str = "src_key_padding_mask",
                marks_padding: bool = True) -> torch.Tensor:
    """A padding mask (bool True, or float -inf / <= -1e4: padding) as a bool real-token
    mask; a float mask of other values is a soft bias, not padding, and is refused. With
    ``marks_padding=False`` it is an attention mask (nonzero: real)."""
    if not marks_padding:
        return pad if pad.dtype == torch.bool else pad != 0
    if pad.dtype == torch.bool:
        return ~pad
    if not pad.is_floating_point():
        return pad == 0
    hidden = pad <= _HIDDEN
    if not bool((hidden | (pad == 0)).all()):
        raise ValueError(
            f"{path!r} receives a float {arg} holding values other than 0 and -inf, so "
            "netxray cannot tell its padding; pass a bool mask (True: padding)"
        )
    return ~hidden


class StackMasks:
    """Per batch, the real-token mask each encoder and decoder covering a recorded layer
    was given.

    ``names`` are the recorded layers' module paths (or calls, ``relu#1``); a layer is
    covered by a stack when it is the stack or inside it. The innermost covering stack of
    the same kind (encoder or decoder) that got a mask wins: on the fast path an encoder's
    layers get none (their input is nested) and the encoder's applies.
    """

    def __init__(self, model: nn.Module, names: Iterable[str]) -> None:
        self.model = model
        self.stacks = _stacks(model)
        self.cover: dict[str, list[str]] = {}
        for name in names:
            call = _CALL_NAME.fullmatch(name)
            name = call[1] if call and name not in self.stacks else name
            paths = [p for p, s in self.stacks.items() if p == name
                     or (s.inside and (not p or name.startswith(f"{p}.")))]
            if paths:
                self.cover[name] = sorted(paths, key=len, reverse=True)
        hooked = {p for paths in self.cover.values() for p in paths}
        hooked |= {p for p, s in self.stacks.items() if s.decoder}  # (when the targets start)
        self.sigs = {p: _signature(self.stacks[p].module) for p in hooked}
        self.decoders = any(self.stacks[p].decoder for p in hooked)
        self.masks: dict[str, torch.Tensor] = {}
        self.batch_mask: torch.Tensor | None = None
        self.decoder: str | None = None  # the last decoder that started in this forward pass
        self.before: list[tuple[str, tuple[int, ...]]] = []  # outside layers run before it

    def begin(self, batch_mask: torch.Tensor | None) -> None:
        """A new batch, with the attention mask it carries (bool ``(batch, seq)``) or None."""
        self.masks.clear()
        self.batch_mask = batch_mask
        self.decoder = None
        self.before = []

    def _paths(self, name: str) -> list[str] | None:
        return self.cover.get(name if name in self.cover else _base(name))

    def mask_for(self, name: str) -> tuple[torch.Tensor | None, bool] | None:
        """``(real-token mask (batch, seq) or None, whether an encoder gave it)`` for the layer
        at module path ``name`` (or one of its calls); None when the batch's mask applies (no
        stack covers the layer, or its encoder got no padding mask in this batch). A
        decoder's layer (or one after a decoder started) gets the decoder's mask, or None
        (no padding) when neither it nor the batch has one; else it is refused."""
        paths = self._paths(name)
        if not paths:
            if self.decoder is None:
                return None
            paths = [self.decoder]
        decoder = self.stacks[paths[0]].decoder
        side = [p for i, p in enumerate(paths)
                if all(self.stacks[q].decoder == decoder for q in paths[: i + 1])]
        for p in side:
            if p in self.masks:
                return self.masks[p], not decoder
        if not decoder:
            return None
        if self.batch_mask is not None:
            raise ValueError(
                f"layer {name!r} runs on the tokens of the decoder {side[-1] or 'model'!r}, "
                "which was given no padding mask while the batch has an attention mask (the "
                "encoder's), so netxray cannot tell which decoder positions are padding. Pass "
                "the decoder's mask (decoder_attention_mask= for a HuggingFace model, "
                "tgt_key_padding_mask= for nn.TransformerDecoder), or leave the decoder's "
                "layers out (layers=...)"
            )
        return None, False

    def note(self, name: str, t: torch.Tensor) -> None:
        """The batch-first output of a layer that read the batch's mask: one outside the
        stacks, run before any decoder, is checked when the forward pass ends."""
        if self.decoders and self.decoder is None and t.ndim >= 3 and not self._paths(name):
            self.before.append((name, tuple(t.shape[:2])))

    def output_mask(self, batch_mask: torch.Tensor | None) -> torch.Tensor | None:
        """The mask of the model's output: the decoder's when one ran (None: it was given
        none), else ``batch_mask``."""
        if self.decoder is None:
            return batch_mask
        return self.masks.get(self.decoder)

    def _seen(self, path: str, module: nn.Module, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        stack = self.stacks[path]
        if stack.decoder:
            self.decoder = path
        pad = _padding_arg(self.sigs[path], stack.arg, args, kwargs)
        if not isinstance(pad, torch.Tensor):
            self.masks.pop(path, None)  # this call has no padding mask (the fast path's layers)
            return
        if pad.ndim != 2:
            raise ValueError(
                f"{path!r} receives a {stack.arg} of shape {tuple(pad.shape)}; netxray "
                "reads (batch, seq) padding masks only"
            )
        real = real_tokens(path, pad.detach(), stack.arg, stack.marks_padding)
        known = self.batch_mask
        if not stack.decoder and known is not None and known.shape == real.shape and not (
                torch.equal(known.cpu(), real.cpu())):
            raise ValueError(
                f"the batch's attention mask (mask=...) and the src_key_padding_mask {path!r} "
                "receives disagree on which tokens are real (that mask marks padding with "
                "True); pass mask=lambda batch: ~padding_mask, or mask=None to use the "
                "encoder's own"
            )
        self.masks[path] = real

    def _ended(self, *_: Any) -> None:
        """After the forward pass: refuse layers outside the stacks that ran before the
        decoder on sequences as long as its (target tokens read with the encoder's mask)."""
        dec = self.masks.get(self.decoder) if self.decoder is not None else None
        if dec is None:
            return
        known = self.batch_mask
        same = known is not None and known.shape == dec.shape and torch.equal(
            known.cpu(), dec.cpu())
        for name, shape in self.before:
            if shape == tuple(dec.shape) and not same:
                raise ValueError(
                    f"layer {name!r} runs before the decoder {self.decoder or 'model'!r}, "
                    f"outside it and the encoder, on sequences as long as the decoder's "
                    f"({dec.shape[1]} tokens), whose padding mask is not the batch's: netxray "
                    "cannot tell whether it reads the source tokens or the target ones. "
                    "Select layers inside the encoder or the decoder (layers=...), or, if "
                    "the layers before the decoder read the targets, pass the decoder's real "
                    "tokens as the batch's mask (mask=lambda b: ~b['tgt_key_padding_mask'])"
                )

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        """Pre-hooks on the stacks that cover a recorded layer (and on the decoders, which
        say when the decoder's tokens start), removed on exit."""
        handles = []
        try:
            for p in self.sigs:
                def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                        p: str = p) -> None:
                    self._seen(p, module, args, kwargs)

                handles.append(self.stacks[p].module.register_forward_pre_hook(
                    pre, with_kwargs=True))
            if self.decoders:
                handles.append(self.model.register_forward_hook(self._ended))
            yield
        finally:
            for h in handles:
                h.remove()


def _base(name: str) -> str:
    call = _CALL_NAME.fullmatch(name)
    return call[1] if call else name
