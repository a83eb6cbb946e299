"""One call of a recorded layer, read as every netxray function reads it: batch-first, with
the real-token mask that applies to it, and where its sequence is.

``activations``, ``collect_stats`` and the training watch all go through :class:`Reader`,
which puts together the layer's layout (:mod:`netxray._layout`: channel-first and
sequence-first outputs) and the masks of the encoders and decoders around it
(:mod:`netxray._padding`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netxray._layout import Layouts, token_view
from netxray._outputs import Packed, align, tokens, zero_padding
from netxray._padding import StackMasks

Unview = Callable[[torch.Tensor], torch.Tensor]  # a source's gradient laid out as the call's


@dataclass
class Call:
    """One call, read. ``t``: the output ``(batch, ...)``; ``source``: the module's own output
    when ``t`` is its ``(seq, batch)`` transpose (gradients reach that), else None; ``mask``:
    the real-token mask that applies (the batch's, or its encoder's or decoder's); ``kind``:
    where the mask came from, ``"batch"``, ``"encoder"`` or ``"decoder"``."""

    t: torch.Tensor
    source: torch.Tensor | None
    mask: torch.Tensor | None
    kind: str = "batch"


class Reader:
    """Reads the calls of the chosen layers of ``model``; :meth:`begin` each batch (its mask
    and size) and hold :meth:`hooks` around the forward passes."""

    def __init__(self, model: nn.Module, chosen: Mapping[str, nn.Module],
                 unit_dim: int | None = None) -> None:
        self.layouts = Layouts(model, chosen, unit_dim)
        self.stacks = StackMasks(model, chosen)
        self.batch_mask: torch.Tensor | None = None
        self.batch: int | None = None

    def begin(self, batch_mask: torch.Tensor | None, batch: int | None) -> None:
        """A new batch of ``batch`` samples (None: unknown) with this attention mask."""
        self.batch_mask, self.batch = batch_mask, batch
        self.stacks.begin(batch_mask)
        if batch_mask is not None or self.stacks.sigs:
            self.layouts.arm()

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        """The hooks reading needs (the stacks' masks, the guessed layouts' inputs), removed
        on exit."""
        with self.layouts.hooks(), (self.stacks.hooks() if self.stacks.sigs
                                    else contextlib.nullcontext()):
            yield

    def plain(self, name: str) -> bool:
        """Whether no mask can apply to this call of ``name`` (its output's sum is all a
        NaN check needs)."""
        return self.batch_mask is None and not self.stacks.sigs

    def read(self, name: str, out: torch.Tensor, strict: bool = False) -> Call:
        """Layer ``name``'s output as it came from :func:`netxray.capture.call_hooks`;
        ``strict``: refuse a layout it cannot tell even without a mask (rows per sample)."""
        self.layouts.called(name)
        found = self.stacks.mask_for(name) if self.stacks.sigs else None
        if found is None:
            mask, kind = self.batch_mask, "batch"
        else:
            mask, kind = found[0], "encoder" if found[1] else "decoder"
        t, source = self.layouts.batch_major(name, out, self.batch, strict or mask is not None)
        if found is None and self.stacks.decoders:
            self.stacks.note(name, t)
        return Call(t, source, mask, kind)

    def token_dim(self, name: str, t: torch.Tensor, mask: torch.Tensor | None) -> int | None:
        return self.layouts.token_dim(name, t, mask)

    def watched(self, name: str, out: torch.Tensor, own: torch.Tensor | None,
                packed: Packed | None, pick: bool
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, Any]] | None:
        """A watched call's rows and what its gradient needs, ``(rows, (source, (mask,
        unview, dim)))`` (see :func:`grad_source`); None for an output that is not floating
        point. ``pick``: real tokens only (a recorded step), else the padding set to 0 (the
        NaN check's sum)."""
        call = self.read(name, out)
        if not call.t.is_floating_point():
            return None
        t, mask = align(name, call.t, own, call.mask)
        graph, unview = grad_source(call, t, packed)
        dim = self.token_dim(name, t, mask)
        if dim is None:
            return t, (graph, (None, unview, None))
        view = token_view(t, dim)
        rows = tokens(view, mask, None) if pick else zero_padding(view, mask)  # type: ignore[arg-type]
        return rows, (graph, (mask, unview, dim))


def grad_source(call: Call, t: torch.Tensor, packed: Packed | None
                ) -> tuple[torch.Tensor, Unview | None]:
    """``(the tensor a gradient reaches, how to lay its gradient out as t's)`` for a call
    read as ``t`` (batch-first, aligned to its mask; None: as it is). A packed output's
    gradient reaches its data, never the padded copy; a sequence-first one's, the module's
    own ``(seq, batch, ...)`` output."""
    if packed is not None:
        return packed.data, functools.partial(packed.padded, length=int(t.shape[1]))
    if call.source is not None:
        return call.source, _transposed
    return t, None


def _transposed(g: torch.Tensor) -> torch.Tensor:
    return g.transpose(0, 1)


def first_size(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int | None:
    """The batch size of a forward call: the first dim of its first tensor argument (as
    :class:`netxray.batches.Batch` counts samples); None without one."""
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor) and a.ndim:
            return int(a.shape[0])
    return None


def grad_rows(g: torch.Tensor, how: tuple[torch.Tensor | None, Unview | None, int | None]
              ) -> torch.Tensor:
    """A layer output's gradient over the rows its statistics read (see :meth:`Reader.watched`)."""
    mask, unview, dim = how
    if unview is not None:
        g = unview(g)
    if mask is not None:  # real tokens only, as the activations
        g = token_view(g, dim or 1)[mask.to(g.device)]
    return g

