"""Record what a model's layers output: layer selection, a hook context manager, whole datasets.

A layer's name is its dotted path in ``model.named_modules()`` (``"encoder.0"``, ``"fc2"``).
Hooks exist only inside :func:`record` and are removed in ``finally``, whatever happens.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import check_eval_mode, explained_shape_errors, preserved_state
from netxray._outputs import POOLS, Packed, batch_first, carried_mask, token_index
from netxray._progress import count_batches, counted
from netxray._reading import Reader
from netxray._results import Result
from netxray._rows import OUTPUT, Collected, same_mask, targets_of
from netxray._warnings import NetxrayWarning
from netxray.batches import (
    BatchFormat,
    LabelSpec,
    MaskSpec,
    OutputSpec,
    check_output_rows,
    pick_output,
    read_batches,
)
from netxray.layers import (  # noqa: F401  (re-exported: netxray.capture.select_layers, ...)
    _CALL_NAME,
    ACTIVATIONS,
    Layers,
    LayerSpec,
    _named,
    _unknown_layer,
    call_name,
    check_ran,
    default_layers,
    fewer_calls,
    is_activation,
    select_layers,
)


def first_tensor(output: Any) -> torch.Tensor | None:
    """The tensor a module produced: itself, or the first tensor of a tuple/list (e.g. LSTM)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def copy_output(output: torch.Tensor) -> torch.Tensor:
    """A detached copy of a layer's output, taken when the layer runs.

    The model may change the tensor itself afterwards (``nn.ReLU(inplace=True)`` after a
    batch-norm, ``out += identity`` in a ResNet block): a reference kept past the forward pass
    would then hold the later values, not the layer's.
    """
    return output.detach().clone()


@contextlib.contextmanager
def hooks(
    modules: dict[str, nn.Module], fn: Callable[[str, torch.Tensor], None]
) -> Iterator[None]:
    """Call ``fn(name, output)`` after each selected module's forward; remove hooks on exit.

    Every call of a module goes to its one name, as it comes (the behaviour the statistics
    rely on until they read :func:`call_hooks`); a selection of one call (``"relu#1"``) is
    refused here. ``fn`` gets the tensor itself: to keep it past the call, keep
    :func:`copy_output` of it (the model may change it in place afterwards).
    """
    calls = [n for n in modules if _CALL_NAME.fullmatch(n)]
    if calls:
        raise ValueError(
            f"layer {calls[0]!r} is one call of a shared module; this function records every "
            "call of a module together. Select the module by its name, or use "
            "netxray.activations / netxray.record, which tell the calls apart"
        )
    handles = []

    def make(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            t = first_tensor(output)
            if t is not None:
                fn(name, t)

        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(make(name)))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def call_hooks(
    model: nn.Module,
    modules: dict[str, nn.Module],
    fn: Callable[[str, torch.Tensor, torch.Tensor | None, Packed | None], None],
) -> Iterator[dict[str, int]]:
    """Call ``fn(layer, output, mask, packed)`` for every call of the selected modules;
    remove on exit.

    ``modules`` is what :func:`select_layers` returns. Call k (k >= 1) of a module within one
    forward pass of ``model`` is layer ``name#k``; ``output`` is batch-first (see
    :func:`netxray._outputs.batch_first`), ``mask`` the real positions a packed or nested
    output carried, else ``None``, and ``packed`` a packed output (its gradient is not the
    padded copy's), else ``None``. A module called outside ``model``'s forward is call 0.
    Yields ``{module name: most calls in one forward pass}``, filled as the model runs, so
    that a selected call that never ran can be told how many there were
    (:func:`netxray.layers.check_ran`).
    """
    wanted: dict[int, tuple[str, set[int] | None]] = {}
    named = _named(model)
    for name, module in modules.items():
        call = _CALL_NAME.fullmatch(name)
        base, k = (call[1], int(call[2])) if call and name not in named else (name, None)
        prev = wanted.get(id(module))
        if k is None or (prev is not None and prev[1] is None):
            wanted[id(module)] = (base, None)
        else:
            wanted[id(module)] = (base, (prev[1] if prev else set()) | {k})
    count: dict[int, int] = {}
    runs: dict[str, int] = {}
    inside = [False]
    handles = []

    def start(*_: Any) -> None:
        count.clear()
        inside[0] = True

    def stop(*_: Any) -> None:
        inside[0] = False

    def hook(module: nn.Module, _inputs: Any, output: Any) -> None:
        key = id(module)
        k = count.get(key, 0) if inside[0] else 0
        count[key] = k + 1
        base, only = wanted[key]
        if k >= runs.get(base, 0):
            runs[base] = k + 1
        if only is not None and k not in only:
            return
        name = base if k == 0 else call_name(base, k)
        if type(output) is torch.Tensor and not output.is_nested and not isinstance(
                module, nn.RNNBase):  # (batch-first as it is: no call for every step)
            fn(name, output, None, None)
            return
        got = batch_first(name, module, output)
        if got is not None:
            fn(name, *got)

    try:
        handles.append(model.register_forward_pre_hook(start))
        handles.append(model.register_forward_hook(stop, always_call=True))
        seen: set[int] = set()
        for module in modules.values():
            if id(module) not in seen:
                seen.add(id(module))
                handles.append(module.register_forward_hook(hook))
        yield runs
    finally:
        for h in handles:
            h.remove()


class Recording:
    """The outputs of the recorded layers, one tensor per forward call.

    ``rec["fc1"]`` concatenates every call's output along the batch dimension;
    ``rec.calls("fc1")`` gives them one by one. A module called k times per forward pass is
    k layers (``relu``, ``relu#1``, ...). Outputs are batch-first (RNNs, packed sequences and
    nested tensors included) and detached copies unless ``record(..., detach=False)``, in
    which case they are the tensors themselves and gradients can flow through them; one the
    model then changed in place is refused when read (its values are no longer the layer's).
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._outputs: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        self._versions: dict[str, list[int | None]] = {n: [] for n in names}
        self._runs: dict[str, int] = {}  # {module: most calls in one forward pass}

    @property
    def layers(self) -> list[str]:
        """The selected layers, plus each later call of a shared module once it ran."""
        return _call_order(self._outputs)

    def calls(self, name: str) -> list[torch.Tensor]:
        if name not in self._outputs:
            raise _unknown_layer(name, dict.fromkeys(self._outputs), " in this recording")  # type: ignore[arg-type]
        for i, (t, v) in enumerate(zip(self._outputs[name], self._versions[name], strict=True)):
            if v is not None and t._version != v:
                raise ValueError(
                    f"call {i} of layer {name!r}: the model changed its output in place after "
                    "the layer ran (nn.ReLU(inplace=True), out += identity, ...), so the tensor "
                    "recorded with detach=False holds the later values, and gradients with "
                    "respect to it would be theirs. Record with detach=True (a copy taken when "
                    "the layer runs) for its values; for gradients, make that operation "
                    "out-of-place (e.g. relu.inplace = False)"
                )
        return list(self._outputs[name])

    def __getitem__(self, name: str) -> torch.Tensor:
        outs = self.calls(name)
        if not outs:
            raise ValueError(fewer_calls(name, self._runs) or
                             f"layer {name!r} was recorded but never ran; call the model first")
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)

    def __contains__(self, name: object) -> bool:
        return name in self._outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self._outputs)

    def clear(self) -> None:
        for outs in (*self._outputs.values(), *self._versions.values()):
            outs.clear()

    def _add(self, name: str, output: torch.Tensor, version: int | None = None) -> None:
        """One call's output; ``version``: its version counter then, for a tensor kept
        itself (not a copy), checked when it is read."""
        self._outputs.setdefault(name, []).append(output)
        self._versions.setdefault(name, []).append(version)


def _call_order(names: Iterable[str]) -> list[str]:
    """Names in selection order, each module's later calls right after it (``relu``,
    ``relu#1``, ``relu#2``, then the next module)."""
    names = list(names)
    rank: dict[str, int] = {}
    for i, n in enumerate(names):
        call = _CALL_NAME.fullmatch(n)
        base = call[1] if call else n
        rank.setdefault(base, i)

    def key(n: str) -> tuple[int, int]:
        call = _CALL_NAME.fullmatch(n)
        if call and call[1] in rank:
            return rank[call[1]], int(call[2])
        return rank.get(n, len(names)), 0

    return sorted(names, key=key)


@contextlib.contextmanager
def record(model: nn.Module, layers: Layers = None, *, detach: bool = True) -> Iterator[Recording]:
    """Capture the outputs of ``layers`` during every forward call inside the block.

    >>> with netxray.record(model, layers="act*") as rec:
    ...     model(x)
    >>> rec["act1"].shape  # (batch, units)

    Outputs are copied as each layer runs (:func:`copy_output`), so a later in-place
    operation of the model cannot change them; ``detach=False`` keeps the tensors themselves
    (an inference tensor, which has no graph, is still copied; a ``PackedSequence`` output's
    padded copy, off the gradient path, is kept with a ``NetxrayWarning``).
    """
    chosen = select_layers(model, layers)
    rec = Recording(chosen)
    warned: set[str] = set()

    def keep(name: str, output: torch.Tensor, _mask: torch.Tensor | None,
             packed: Packed | None) -> None:
        if detach or output.is_inference():  # (an inference tensor has no version counter)
            rec._add(name, copy_output(output))
            return
        if packed is not None and packed.data.requires_grad and name not in warned:
            warned.add(name)
            warnings.warn(
                f"layer {name!r} outputs a PackedSequence: record(detach=False) keeps its "
                "padded copy, which the model does not go on from, so no gradient reaches it "
                "(autograd.grad raises, or gives None with allow_unused). Take gradients with "
                "respect to the PackedSequence's .data (a forward hook on the layer)",
                NetxrayWarning, stacklevel=2)
        rec._add(name, output, output._version)

    with call_hooks(model, chosen, keep) as rec._runs:
        yield rec


@dataclass(frozen=True, eq=False)
class Activations(Result):
    """Hidden-layer outputs over a dataset, kept on the CPU, one row per sample or per token.

    ``layers[name]`` is ``(rows, ...)``; ``outputs`` the model's output ``(rows, ...)``;
    ``targets`` the labels ``(rows, ...)`` when the data had them. Rows are samples, except
    that with an attention mask the layers in ``token_layers`` (and the outputs and targets,
    when ``token_outputs``) have one row per real token, described by ``token_index``
    ``(tokens, 2)``: the token's sequence (its sample's index in the data) and its position
    among that sequence's real tokens.
    """

    layers: dict[str, torch.Tensor]
    outputs: torch.Tensor
    targets: torch.Tensor | None
    token_index: torch.Tensor | None = None
    token_layers: tuple[str, ...] = ()
    token_outputs: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "token_layers", tuple(self.token_layers))

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.layers:
            raise _unknown_layer(name, dict.fromkeys(self.layers), " in these activations")  # type: ignore[arg-type]
        return self.layers[name]

    def flat(self, name: str) -> np.ndarray:
        """``(rows, features)`` NumPy view of a layer, conv maps flattened, for projections."""
        h = self[name]
        return h.reshape(h.shape[0], -1).numpy()


def activations(
    model: nn.Module,
    data: Any,
    layers: Layers = None,
    *,
    batch_size: int = 1024,
    labels: LabelSpec = "labels",
    mask: MaskSpec = "attention_mask",
    output: OutputSpec = None,
    pool: str | None = None,
    allow_train: bool = False,
    progress: bool | None = None,
) -> Activations:
    """Run ``model`` over ``data`` without gradients and keep the chosen layers' outputs.

    ``data``: a tensor ``(n, ...)``, an ``(X, y)`` pair, a dict of arrays (a tokenizer's
    output), a DataLoader or an iterable of batches (tensors, tuples, dicts passed to the
    model as keyword arguments); see :func:`netxray.batches.read_batches`. ``labels``: the
    dict entry holding the labels; ``mask``: where the attention mask is (a key, a tensor
    ``(n, seq)`` or a function of the batch); ``output``: which part of the model's output to
    keep (default: ``logits`` or the first tensor). With a mask, layers whose output is
    ``(batch, seq, ...)`` (or channel-first ``(batch, channels, seq)``, and sequence-first
    ones transposed; layers inside a decoder: its own mask; see :mod:`netxray._reading`)
    keep real tokens only: one row per token, or per sequence with ``pool="mean"`` (over
    real tokens) or ``"first"`` (the first real token).
    Memory grows with the data (everything is kept): for statistics over large data use
    :func:`netxray.collect_stats`, which keeps none. Inputs the model cannot take raise
    "the model cannot take inputs of shape ...; it expects ..." (see
    :func:`netxray._checks.probe_model`); inputs and labels of different lengths, batches
    with and without labels, and a single unbatched sample ``(features,)`` are refused.
    ``progress``: a bar over the batches (see :mod:`netxray._progress`; ``None``: when long).
    """
    if pool not in POOLS:
        raise ValueError(f"pool must be None, 'mean' or 'first', got {pool!r}")
    check_eval_mode(model, allow_train=allow_train)
    chosen = select_layers(model, layers)
    fmt = BatchFormat(labels=labels, mask=mask, output=output)
    got = Collected(pool)
    outputs = Collected(pool)
    targets: list[torch.Tensor] = []
    seen: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    decoded: dict[str, torch.Tensor | None] = {}  # a decoder's layers: its mask
    reader = Reader(model, chosen)

    def keep(name: str, out: torch.Tensor, own: torch.Tensor | None, _packed: Any) -> None:
        call = reader.read(name, out, strict=True)  # (rows per sample: the layout matters)
        if own is None and call.kind == "encoder":  # inside an encoder given a padding mask
            own = call.mask
        elif call.kind == "decoder":
            decoded[name] = call.mask
        seen[name] = (copy_output(call.t), own)  # (the rows' one copy on the CPU, taken now)

    offset = 0
    read = read_batches(data, batch_size, fmt)
    bar = counted(read, desc="activations", total=count_batches(data, batch_size), progress=progress)
    with preserved_state(model), torch.no_grad(), call_hooks(model, chosen, keep) as runs, \
            reader.hooks(), bar as batches:
        for raw in batches:
            batch = raw.to(model)
            seen.clear()
            decoded.clear()
            reader.begin(batch.mask, batch.size)
            with explained_shape_errors(model, _call_inputs(batch)):
                out = pick_output(batch.run(model), output)
            check_output_rows(batch, out)
            mask = batch.mask if batch.mask is not None else carried_mask(seen)
            if pool is not None and mask is None:
                raise ValueError(
                    f"pool={pool!r} needs an attention mask, and a batch has none: pass "
                    "mask= (a dict key, a tensor (n, seq) or a function of the batch)"
                )
            carried = batch.mask is None
            got.tokens_of = outputs.tokens_of = None
            for name, (t, own) in seen.items():
                got.add(name, t, own, decoded[name] if name in decoded else mask, batch.size,
                        carried, copied=True, token_dim=reader.token_dim)
            out_mask = reader.stacks.output_mask(mask)  # (a seq2seq model's: the decoder's)
            if got.tokens_of and out_mask is not None and not same_mask(out_mask, got.tokens_of[1]):
                out_mask = None  # the layers' tokens are the encoder's: one row per sample
            outputs.add(OUTPUT, out, None, out_mask, batch.size, carried)
            out_tokens = outputs.per_token[OUTPUT]
            index = got.tokens_of or outputs.tokens_of
            if index is not None and pool is None:
                got.index.append(token_index(index[1], offset))
            if batch.labels is not None:
                targets.append(targets_of(batch.labels, out_mask, out_tokens, pool))
            offset += batch.size
    check_ran(chosen, got.rows, runs)
    names = [n for n in _call_order(dict.fromkeys([*chosen, *got.rows])) if n in got.rows]
    token_outputs = pool is None and outputs.per_token[OUTPUT]
    return Activations(
        layers={n: got.cat(n) for n in names},
        outputs=outputs.cat(OUTPUT),
        targets=torch.cat(targets) if targets else None,
        token_index=torch.cat(got.index) if got.index else None,
        token_layers=tuple(n for n in names if got.per_token[n] and pool is None),
        token_outputs=token_outputs,
    )


def _call_inputs(batch: Any) -> Any:
    """What the model was called with, for the shape in an error message."""
    if batch.kwargs:
        return dict(batch.kwargs) if not batch.args else (*batch.args, batch.kwargs)
    return batch.args[0] if len(batch.args) == 1 else batch.args

