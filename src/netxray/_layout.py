"""Where the batch, the sequence and the units are in a layer's output, call by call.

netxray reads every output as ``(batch, ...)`` and, under an attention mask ``(batch, seq)``,
picks real tokens out of ``(batch, seq, ...)`` outputs. Two layouts need more than the shape:

* channel-first outputs, ``(batch, channels, seq)`` (a text CNN's ``Conv1d``, its norms and
  pools, and the activations after them): units at dim 1, the sequence last. A module whose
  layout comes from its type is read so. One whose layout is only guessed from the modules
  declared before it (an activation, see :func:`netxray.layers.layer_layouts`) is read so
  when its input was, in that very call, the output of one of them (``relu(conv(x))``);
  otherwise it is refused when its shape fits both readings or contradicts the guess. A
  channel-first output whose length differs from the mask's (a stride, a kernel without
  padding, a pool) is refused: which of its positions are padding cannot be told.
* sequence-first outputs, ``(seq, batch, ...)``: RNNs (transposed by
  :func:`netxray._outputs.batch_first`), attention and transformer modules built with
  ``batch_first=False`` and the modules inside them (transposed here). Other modules of a
  model that has such a module may run on either layout: an output whose second dimension is
  the batch size (and whose first is not) is transposed; one whose first two are both the
  batch size is refused where it matters (rows per sample, or an attention mask to apply).
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netxray.layers import _CALL_NAME, _CHANNEL_MODULES, _FEATURE_MODULES, layer_layouts

#: Modules that may take and give ``(seq, batch, ...)`` tensors, by their ``batch_first``.
_TRANSFORMERS = (nn.TransformerEncoder, nn.TransformerEncoderLayer, nn.TransformerDecoder,
                 nn.TransformerDecoderLayer, nn.Transformer)


def sequence_first(module: nn.Module) -> bool | None:
    """Whether ``module`` takes and gives ``(seq, batch, ...)`` tensors (``batch_first=False``);
    None for a module that has no such setting."""
    if isinstance(module, nn.RNNBase | nn.MultiheadAttention | nn.Transformer):
        return not module.batch_first
    if isinstance(module, nn.TransformerEncoderLayer | nn.TransformerDecoderLayer):
        return not module.self_attn.batch_first
    if isinstance(module, nn.TransformerEncoder | nn.TransformerDecoder) and len(module.layers):
        return sequence_first(module.layers[0])
    return None


@dataclass(frozen=True)
class Layout:
    """What is known of one layer's output. ``unit_dim``: its units' dim (1: channel-first);
    ``inferred``: that is a guess from declaration order; ``seq_first``: True for
    ``(seq, batch, ...)`` by its type or the transformer it is in, ``"rnn"`` for a
    sequence-first RNN (already transposed), False for batch-first, None when unknown in a
    model that runs sequence-first modules."""

    unit_dim: int = -1
    inferred: bool = False
    seq_first: bool | str | None = False


def _seq_first_layouts(model: nn.Module) -> tuple[dict[str, bool | str], str | None]:
    """Per module path, its known ``seq_first``; and the first sequence-first module (named
    in messages), or None when the model has none."""
    known: dict[str, bool | str] = {}
    first = None
    for path, module in model.named_modules():
        sf = sequence_first(module)
        if sf and first is None:
            first = f"{path or 'the model'} ({type(module).__name__}, batch_first=False)"
        if isinstance(module, nn.RNNBase):
            known[path] = "rnn" if sf else False
        elif sf is not None:
            known[path] = sf
            if isinstance(module, _TRANSFORMERS):  # its insides run on its layout
                known.update((f"{path}.{sub}".lstrip("."), sf)
                             for sub, _ in module.named_modules() if sub)
    return known, first


def _sources(model: nn.Module, paths: set[str]) -> dict[str, tuple[str, ...]]:
    """For each of ``paths`` (modules whose layout is guessed), the modules declared from the
    nearest one of a known layout before it up to it (not its ancestors): an input that is
    one of their outputs has the guessed layout."""
    order = [p for p, _ in model.named_modules()]
    mods = dict(model.named_modules())
    found = {}
    for path in paths:
        i = order.index(path) if path in mods else 0
        known = [k for k in range(i) if isinstance(mods[order[k]], _CHANNEL_MODULES
                                                   + _FEATURE_MODULES)]
        if known:
            found[path] = tuple(p for p in order[known[-1]:i]
                                if not (path.startswith(f"{p}.") or not p))
    return found


class Layouts:
    """The :class:`Layout` of each chosen layer, and the reading of its outputs."""

    def __init__(self, model: nn.Module, chosen: Mapping[str, nn.Module],
                 unit_dim: int | None = None) -> None:
        dims = layer_layouts(model, chosen)
        known, self.seq_first_module = _seq_first_layouts(model)
        unknown = None if self.seq_first_module else False
        self.layouts: dict[str, Layout] = {}
        for name in chosen:
            call = _CALL_NAME.fullmatch(name)
            path = call[1] if call and name not in known and call[1] in known else name
            ud, inferred = dims[name] if unit_dim is None else (unit_dim, False)
            self.layouts[name] = Layout(ud, inferred, known.get(path, unknown))
        self.modules = dict(model.named_modules())
        self.sources = _sources(model, {_base(n) for n, lay in self.layouts.items()
                                        if lay.inferred})
        self._outs: dict[str, weakref.ref[torch.Tensor]] = {}
        self._ins: dict[str, weakref.ref[torch.Tensor]] = {}
        self.followed: dict[str, bool] = {}  # per guessed layer: its last call's input told
        self._handles: list[Any] | None = None  # (None: outside hooks())

    @contextlib.contextmanager
    def hooks(self) -> Iterator[None]:
        """Within this block, :meth:`arm` may hook the modules that guessed layouts rely on."""
        self._handles = []
        try:
            yield
        finally:
            for h in self._handles:
                h.remove()
            self._handles = None

    def arm(self) -> None:
        """Watch, from now on, where the guessed layers' inputs come from (once a batch has
        a mask to apply: a model that never gets one pays nothing)."""
        if self._handles is None or self._handles or not self.sources:
            return
        for path in {p for ps in self.sources.values() for p in ps}:
            self._handles.append(self.modules[path].register_forward_hook(
                functools.partial(_keep_ref, self._outs, path)))
        for path in self.sources:
            self._handles.append(self.modules[path].register_forward_pre_hook(
                lambda _m, args, path=path: _keep_ref(self._ins, path, _m, args, None)))

    def called(self, name: str) -> None:
        """Layer ``name`` just ran: note whether its input was an output of the modules its
        layout is guessed from (read by :meth:`token_dim`, now or after the forward pass)."""
        base = _base(name)
        if base not in self.sources or not self._ins:
            return
        ref = self._ins.get(base)
        x = ref() if ref is not None else None
        self.followed[name] = x is not None and any(
            (r := self._outs.get(p)) is not None and r() is x for p in self.sources.get(base, ()))

    def of(self, name: str) -> Layout:
        found = self.layouts.get(name)
        if found is None:
            call = _CALL_NAME.fullmatch(name)
            found = self.layouts.get(call[1]) if call else None
        return found or Layout()

    def batch_major(self, name: str, out: torch.Tensor, batch: int | None, strict: bool
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(out as (batch, ...), the module's own output when that is a transposed view of
        it, else None)``: the gradient reaches the module's output, not the view. ``batch``:
        the batch size (None: unknown); ``strict``: refuse a shape that fits both layouts (the
        caller keeps rows per sample, or applies a mask)."""
        seq = self.of(name).seq_first
        if seq is False or out.ndim < 3:
            return out, None
        if seq == "rnn":  # (call_hooks made it batch-first)
            base = out._base
            own = base is not None and base.shape == out.transpose(0, 1).shape
            return out, base if own else None
        if seq is True:
            return out.transpose(0, 1), out
        if batch is None:
            return out, None
        first, second = out.shape[0] == batch, out.shape[1] == batch
        if second and not first:
            return out.transpose(0, 1), out
        if first and second and strict:
            raise ValueError(
                f"layer {name!r} outputs shape {tuple(out.shape)}: its first two dimensions are "
                f"both the batch size, {batch}, and the model runs sequence-first modules "
                f"({self.seq_first_module}), so netxray cannot tell whether it is (batch, seq, "
                "...) or (seq, batch, ...). Build them with batch_first=True, leave this layer "
                "out (layers=...), or use a batch size other than the sequence length"
            )
        return out, None

    def token_dim(self, name: str, t: torch.Tensor, mask: torch.Tensor | None) -> int | None:
        """Which dim of batch-first ``t`` is the sequence of ``mask``: 1 for ``(batch, seq,
        ...)``, 2 for a channel-first ``(batch, channels, seq)``; None when ``t`` has one row
        per sample. Refuses a layout it cannot tell (see the module docstring)."""
        if mask is None or t.ndim < 3 or t.shape[0] != mask.shape[0]:
            return None
        lay = self.of(name)
        if lay.inferred and self.followed.get(name):
            lay = Layout(lay.unit_dim)
        seq = mask.shape[1]
        tokens = t.shape[1] == seq
        channels = t.ndim == 3 and t.shape[2] == seq
        if lay.unit_dim % t.ndim != 1:  # features last: (batch, seq, ..., features)
            if lay.inferred and channels:
                raise _unclear(name, t, seq, both=tokens)
            return 1 if tokens else None
        if lay.inferred and tokens and t.ndim == 3:
            raise _unclear(name, t, seq, both=channels)
        if channels:
            return 2
        if t.ndim >= 4 or all(n == 1 for n in t.shape[2:]):
            return None  # a 2-D map (an image), or pooled over every position
        raise ValueError(
            f"layer {name!r} is channel-first, (batch, channels, positions), and outputs "
            f"{tuple(t.shape)}: {t.shape[2]} positions where the attention mask has {seq} "
            "tokens (a stride, a kernel without padding or a pool changed the length), so "
            "netxray cannot tell which positions are padding. Keep the length (Conv1d(..., "
            "padding='same')), leave this layer out (layers=...), or pass mask=None to count "
            "every position, padding included"
        )


def _unclear(name: str, t: torch.Tensor, seq: int, both: bool) -> ValueError:
    what = (f"fits both (batch, seq, features) and (batch, channels, seq) for a mask of {seq} "
            "tokens" if both else
            f"does not fit the layout guessed from the modules declared before it (mask of "
            f"{seq} tokens)")
    return ValueError(
        f"layer {name!r} outputs {tuple(t.shape)}, which {what}; it is not a module whose "
        "layout netxray knows (a Conv1d, BatchNorm1d, pool: channels first; a Linear, "
        "LayerNorm, RNN, attention: features last) and the model has channel-first modules. "
        "Select layers of a known layout (layers=...), or pad to a sequence length other "
        "than the number of channels"
    )


def _base(name: str) -> str:
    call = _CALL_NAME.fullmatch(name)
    return call[1] if call else name


def _keep_ref(refs: dict[str, Any], path: str, _module: nn.Module, args: Any,
              output: Any) -> None:
    """A weak reference to a module's output (``output``), or its input (``args``)."""
    t = output if output is not None else (args[0] if args else None)
    if isinstance(t, tuple | list):
        t = t[0] if t else None
    if isinstance(t, torch.Tensor):
        refs[path] = weakref.ref(t)


def token_view(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``t`` as ``(batch, seq, ...)`` given its sequence dim (see :meth:`Layouts.token_dim`)."""
    return t.transpose(1, 2) if dim == 2 else t
