"""The rows :func:`netxray.activations` keeps: one per sample, or one per real token.

Per batch, every per-token layer (and the model's output, when per token) must read the same
tokens, since one ``token_index`` describes their rows: an encoder's layers and a decoder's
read different ones and are refused together.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from netxray._layout import token_view
from netxray._outputs import align, has_seq, tokens, widen

OUTPUT = "the model's output"
TokenDim = Callable[[str, torch.Tensor, torch.Tensor | None], int | None]


def what(name: str) -> str:
    return name if name == OUTPUT else f"layer {name!r}"


def seq_dim(_name: str, t: torch.Tensor, mask: torch.Tensor | None) -> int | None:
    """The sequence dim of an output read as ``(batch, seq, ...)`` (the model's output)."""
    return 1 if has_seq(t, mask) else None


class Collected:
    """Per-layer rows of one ``activations`` call, with the checks that keep rows honest."""

    def __init__(self, pool: str | None) -> None:
        self.pool = pool
        self.rows: dict[str, list[torch.Tensor]] = {}
        self.per_token: dict[str, bool] = {}
        self.index: list[torch.Tensor] = []
        self.tokens_of: tuple[str, torch.Tensor] | None = None  # this batch's token mask

    def add(
        self, name: str, t: torch.Tensor, own: torch.Tensor | None, mask: torch.Tensor | None,
        size: int, carried: bool = False, copied: bool = False, token_dim: TokenDim = seq_dim,
    ) -> None:
        """One batch's rows of ``name``; ``copied``: ``t`` is already a copy of ours (on the
        CPU it is kept as it is); ``token_dim``: where its sequence is (see
        :meth:`netxray._layout.Layouts.token_dim`)."""
        if carried and own is None and mask is not None and t.ndim >= 3 and t.shape[1] > mask.shape[1]:
            mask = widen(mask, t.shape[1])  # packed/nested masks stop at the longest sequence
        t, mask = align(name, t, own, mask)
        dim = token_dim(name, t, mask)
        token = dim is not None
        if name in self.per_token and self.per_token[name] != token:
            raise ValueError(
                f"{what(name)} has a sequence dimension matching the attention mask in some "
                "batches and not in others; pad every batch's sequences the same way"
            )
        self.per_token[name] = token
        if token:
            self._one_index(name, mask)  # type: ignore[arg-type]
            t = tokens(token_view(t, dim), mask, self.pool)  # type: ignore[arg-type]
        elif t.shape[0] != size:
            raise ValueError(
                f"{what(name)} has shape {tuple(t.shape)} for a batch of {size} "
                "samples; netxray needs (batch, ...). Record a layer whose output is batch-first"
            )
        copy = t.device.type == "cpu" and not copied
        self.rows.setdefault(name, []).append(t.detach().to("cpu", copy=copy))

    def _one_index(self, name: str, mask: torch.Tensor) -> None:
        if self.tokens_of is None:
            self.tokens_of = (name, mask)
            return
        first, known = self.tokens_of
        if not same_mask(mask, known):
            raise ValueError(
                f"{what(name)} and {what(first)} read different tokens (an encoder's and a "
                "decoder's, whose padding differs), and activations keeps one row per token "
                "of one kind; record the encoder's and the decoder's layers in separate "
                "calls (layers=...)"
            )

    def cat(self, name: str) -> torch.Tensor:
        parts = self.rows[name]
        shapes = {tuple(p.shape[1:]) for p in parts}
        if len(shapes) > 1:
            raise ValueError(
                f"{what(name)} has different shapes in different batches "
                f"({', '.join(str(s) for s in sorted(shapes))}); sequences padded to different "
                "lengths need their attention mask (mask=...) or one padding length"
            )
        return torch.cat(parts)


def same_mask(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.shape == b.shape and torch.equal(a.cpu(), b.cpu()))


def targets_of(
    y: torch.Tensor, mask: torch.Tensor | None, token_outputs: bool, pool: str | None
) -> torch.Tensor:
    """A batch's labels: real tokens only for per-token labels of per-token outputs."""
    if token_outputs and mask is not None and y.ndim >= 2 and y.shape[1] == mask.shape[1]:
        if pool is not None:
            raise ValueError(
                f"the labels are per token (shape {tuple(y.shape)}) but pool={pool!r} gives "
                "one row per sequence; pass pool=None for per-token labels"
            )
        return y[mask.to(y.device)].cpu()
    return y.cpu()
