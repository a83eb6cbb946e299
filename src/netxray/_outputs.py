"""Layer outputs as batch-first tensors, and real tokens picked out of padded ones.

Hooks see what a module returns: a tensor, an RNN's ``(output, state)`` tuple (sequence-first
unless ``batch_first=True``), a ``PackedSequence``, or the nested tensor
``nn.TransformerEncoder`` passes between its layers when given a padding mask. Every netxray
function wants ``(batch, ...)``; these helpers give it that, with the real-token mask the
packed or nested form carried, or say clearly why they cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

POOLS = (None, "mean", "first")


def _first(output: Any) -> Any:
    """The tensor (or PackedSequence) a module produced: itself, or the first in a tuple."""
    if isinstance(output, torch.Tensor | PackedSequence):
        return output
    if isinstance(output, tuple | list):
        for item in output:
            found = _first(item)
            if found is not None:
                return found
    return None


@dataclass(frozen=True, eq=False)
class Packed:
    """A layer's ``PackedSequence`` output. The model goes on from its ``data`` ``(real
    tokens, ...)``, so a gradient reaches that tensor, never the padded copy netxray reads."""

    seq: PackedSequence

    @property
    def data(self) -> torch.Tensor:
        return self.seq.data

    def padded(self, g: torch.Tensor, length: int) -> torch.Tensor:
        """A gradient of :attr:`data` laid out as the padded copy, ``(batch, length, ...)``
        (zero at padding): each real token's row where that token's output is."""
        s = self.seq
        again = PackedSequence(g, s.batch_sizes, s.sorted_indices, s.unsorted_indices)
        return pad_packed_sequence(again, batch_first=True, total_length=length)[0]


def batch_first(
    name: str, module: nn.Module, output: Any
) -> tuple[torch.Tensor, torch.Tensor | None, Packed | None] | None:
    """``(tensor (batch, ...), real-token mask (batch, seq) or None, the packed output or
    None)`` for a module's output.

    ``None`` when the output holds no tensor. Sequence-first RNN outputs are transposed;
    packed sequences are unpacked (a copy: their gradient is :class:`Packed`'s) and nested
    tensors padded with zeros (only PyTorch's inference fast path makes them: no gradient),
    each with the mask of its real positions.
    """
    t = _first(output)
    if t is None:
        return None
    if isinstance(t, PackedSequence):
        padded, lengths = pad_packed_sequence(t, batch_first=True)
        return padded, _lengths_mask(lengths, padded.shape[1]), Packed(t)
    if t.is_nested:
        return (*_unnest(name, t), None)
    if isinstance(module, nn.RNNBase) and not module.batch_first and t.ndim == 3:
        return t.transpose(0, 1), None, None
    return t, None, None


def _lengths_mask(lengths: torch.Tensor, seq: int) -> torch.Tensor:
    return torch.arange(seq)[None, :] < lengths.cpu()[:, None]


def _unnest(name: str, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if t.dim() != 3:
        raise ValueError(
            f"layer {name!r} outputs a nested tensor with {t.dim()} dimensions; netxray reads "
            "nested tensors shaped (batch, ragged seq, features) only. Record a layer that "
            "outputs a regular tensor, or run the model without the padding mask"
        )
    try:
        lengths = torch.tensor([int(c.shape[0]) for c in t.unbind()])
        padded = t.to_padded_tensor(0.0)
    except RuntimeError as e:
        raise ValueError(
            f"layer {name!r} outputs a nested tensor netxray cannot pad ({e}); record a layer "
            "that outputs a regular tensor"
        ) from None
    return padded, _lengths_mask(lengths, padded.shape[1])


def carried_mask(seen: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> torch.Tensor | None:
    """The real-token mask that packed or nested layer outputs carried, when the batch had
    none; they must all agree."""
    masks = [own for _, own in seen.values() if own is not None]
    if not masks:
        return None
    width = max(m.shape[1] for m in masks)
    masks = [widen(m, width) for m in masks]
    if any(not torch.equal(m, masks[0]) for m in masks[1:]):
        raise ValueError(
            "layers output packed or nested sequences with different real tokens; pass the "
            "attention mask (mask=...) so netxray knows which tokens are real"
        )
    return masks[0]


def widen(mask: torch.Tensor, width: int) -> torch.Tensor:
    """A mask padded at the end with False up to ``width`` positions."""
    if mask.shape[1] >= width:
        return mask
    return nn.functional.pad(mask, (0, width - mask.shape[1]), value=False)


def align(
    name: str, t: torch.Tensor, own: torch.Tensor | None, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The layer output and the mask that applies to it, at a common sequence length.

    ``own`` is the mask a packed or nested output carried (padded at the end); it must agree
    with ``mask``, the batch's attention mask, when both exist.
    """
    if mask is None:
        return t, own
    if own is None:
        return t, mask
    seq = mask.shape[1]
    if t.shape[1] < seq:
        t = nn.functional.pad(t, (0, 0) * (t.ndim - 2) + (0, seq - t.shape[1]))
    own = widen(own, seq)
    if own.shape != mask.shape or not torch.equal(own.cpu(), mask.cpu()):
        raise ValueError(
            f"layer {name!r} outputs a packed or nested sequence whose real tokens differ from "
            "the batch's attention mask; pad at the end, and pass the mask that the model "
            "uses (mask=...)"
        )
    return t, mask


def has_seq(t: torch.Tensor, mask: torch.Tensor | None) -> bool:
    """Whether ``t`` is ``(batch, seq, ...)`` for this mask (three or more dimensions)."""
    return (
        mask is not None and t.ndim >= 3
        and t.shape[0] == mask.shape[0] and t.shape[1] == mask.shape[1]
    )


def tokens(t: torch.Tensor, mask: torch.Tensor, pool: str | None) -> torch.Tensor:
    """Real tokens of ``t`` ``(batch, seq, ...)``: ``(tokens, ...)`` rows, or one per sequence.

    ``pool="mean"`` averages each sequence's real tokens, ``"first"`` takes its first one.
    """
    mask = mask.to(t.device)
    if pool is None:
        return t[mask]
    counts = mask.sum(1)
    if bool((counts == 0).any()):
        empty = int((counts == 0).nonzero()[0])
        raise ValueError(
            f"sequence {empty} of a batch has no real token (its mask is all 0); pool={pool!r} "
            "has nothing to pool: drop empty sequences"
        )
    if pool == "first":
        first = mask.to(torch.int8).argmax(1)
        return t[torch.arange(t.shape[0], device=t.device), first]
    w = mask.to(t.dtype).reshape(*mask.shape, *([1] * (t.ndim - 2)))
    return (t * w).sum(1) / counts.to(t.dtype).reshape(-1, *([1] * (t.ndim - 2)))


def zero_padding(t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``t`` ``(batch, seq, ...)`` with its padding set to 0 (a NaN there too): its sum is
    the real tokens' sum, and unlike picking them out (``tokens``) it never reads their
    count back from an accelerator."""
    m = mask.to(t.device).reshape(*mask.shape, *([1] * (t.ndim - 2)))
    return torch.where(m, t, 0)


def token_index(mask: torch.Tensor, offset: int) -> torch.Tensor:
    """``(tokens, 2)`` int64: each real token's sequence (counted over the data) and its
    position among its sequence's real tokens (so padding never shifts it)."""
    mask = mask.cpu()
    seq, _ = mask.nonzero(as_tuple=True)
    pos = (mask.cumsum(1) - 1)[mask]
    return torch.stack([seq + offset, pos], dim=1).to(torch.int64)
