"""Batches as models take them: one adapter from whatever the data yields to a model call.

Data yields tensors, ``(x, y)`` tuples, dicts or HF ``BatchEncoding``s; the model wants
``model(*args, **kwargs)``; netxray also wants the labels and, for text, the attention mask.
:func:`read_batches` turns any of these into :class:`Batch` objects so that every
dataset-level function reads data the same way and never guesses silently.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import (
    TOKEN_IDS,
    as_input_tensor,
    model_device,
    output_tensor,
    token_ids_error,
)

#: Which entry of a dict batch holds the labels (``None``: batches carry no labels).
LabelSpec = str | None
#: Where the attention mask is: a dict key, a tensor ``(n, seq)`` for the whole dataset,
#: a function of the raw batch, or ``None``. True / 1 marks a real token, False / 0 padding.
MaskSpec = str | torch.Tensor | np.ndarray | Callable[[Any], Any] | None
#: Which part of the model's output is "the output" (targets, losses): a key, an index,
#: a function of the output, or ``None`` (``logits`` if present, else the first tensor).
OutputSpec = str | int | Callable[[Any], torch.Tensor] | None

_DEFAULT_LABELS = "labels"
_DEFAULT_MASK = "attention_mask"


@dataclass(frozen=True)
class Batch:
    """One batch as the model takes it.

    ``model(*args, **kwargs)`` is the call (:meth:`run`); ``labels`` are ``(size, ...)`` or
    ``None``; ``mask`` is a bool ``(size, seq)`` attention mask (True: real token) or ``None``;
    ``size`` is the number of samples; ``raw`` is the batch as the data yielded it.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    labels: torch.Tensor | None
    mask: torch.Tensor | None
    size: int
    raw: Any = field(default=None, repr=False, compare=False)

    @property
    def inputs(self) -> torch.Tensor:
        """The first input tensor (positional first, then keyword): ``(size, ...)``."""
        for v in (*self.args, *self.kwargs.values()):
            if isinstance(v, torch.Tensor):
                return v
        raise ValueError("the batch holds no input tensor")

    def to(self, model: nn.Module) -> Batch:
        """Inputs on the model's device (floats in its dtype, checked finite), mask too."""
        args = tuple(_input(v, model, "inputs") for v in self.args)
        kwargs = {k: _input(v, model, f"input {k!r}", ids=k == TOKEN_IDS)
                  for k, v in self.kwargs.items()}
        mask = None if self.mask is None else self.mask.to(model_device(model))
        return replace(self, args=args, kwargs=kwargs, mask=mask)

    def run(self, model: nn.Module) -> Any:
        """``model(*args, **kwargs)``, after checking that the model takes these keywords; a
        call its forward's signature refuses (``forward(x, lengths)`` given one tensor) says
        which batch forms exist, instead of Python's bare TypeError."""
        if self.kwargs:
            check_keywords(model, self.kwargs)
        try:
            return model(*self.args, **self.kwargs)
        except TypeError as e:
            clear = _call_error(model, self.args, self.kwargs)
            if clear is None:  # the signature takes this call: an error inside the model
                raise
            raise clear from e


def _call_error(model: nn.Module, args: tuple[Any, ...], kwargs: Mapping[str, Any]
                ) -> ValueError | None:
    """The error for a call ``model.forward``'s signature does not take (a tuple batch reads
    as ``(inputs, labels)``, so a ``(x, lengths)`` batch passes only ``x``), else ``None``."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):  # a builtin or C forward: no signature to compare with
        return None
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        why = str(e)
    else:
        return None
    params = list(sig.parameters)
    takes = ", ".join(params[:6]) + (", ..." if len(params) > 6 else "")
    n = len(args)
    given = ("no positional input" if n == 0 else "1 positional input" if n == 1 else
             f"{n} positional inputs") + (f" and {', '.join(kwargs)} by name" if kwargs else "")
    named = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    example = ("{" + ", ".join(f"{p!r}: ..." for p in named[:4]) + ", 'labels': y}" if named
               else "a dict of the forward's keyword arguments")
    return ValueError(
        f"the model's forward({takes}) cannot be called with what the batch gives ({given}): "
        f"{why}. netxray reads a batch as a tensor (the model's one input), an (x, y) tuple "
        "(x is the input, y the labels; later items are not passed to the model), or a dict "
        "passed to the model by keyword. To pass more arguments (e.g. a packed-RNN batch's "
        f"lengths), yield dict batches named after the forward's parameters, {example} "
        "(labels= names the labels entry), or wrap the model in a module whose forward takes "
        "one input"
    )


def _input(v: Any, model: nn.Module, what: str, ids: bool = False) -> Any:
    """``v`` on the model's device; ``ids``: it holds token ids, refused unless integers
    (before the model runs, not as torch's error from inside its embedding)."""
    if isinstance(v, np.ndarray):
        v = _tensor(v, what)
    if ids and isinstance(v, torch.Tensor) and (
            v.is_floating_point() or v.is_complex() or v.dtype == torch.bool):
        raise token_ids_error(v.dtype, f"the batch's {TOKEN_IDS!r} entry holds them")
    if isinstance(v, torch.Tensor):
        return as_input_tensor(v, model, what) if v.ndim else v.to(model_device(model))
    return v


def check_keywords(model: nn.Module, kwargs: Mapping[str, Any]) -> None:
    """Refuse keywords ``model.forward`` does not take, saying how to route them."""
    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):  # a builtin or C forward: let the call decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    names = {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    extra = [k for k in kwargs if k not in names]
    if extra:
        raise ValueError(
            f"the model's forward takes no argument {extra[0]!r} (it takes: "
            f"{', '.join(sorted(names)) or 'nothing by name'}). Dict batches are passed to the "
            f"model as keyword arguments; if {extra[0]!r} holds the labels, pass "
            f"labels={extra[0]!r}, or rename the entries to the forward's parameter names"
        )


def _tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise TypeError(f"{what} must be numeric, got an object array")
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, list | tuple) and x and not isinstance(x[0], torch.Tensor | np.ndarray):
        return torch.as_tensor(x)
    raise TypeError(f"{what} must be a tensor or array, got {type(x).__name__}")


def _is_array(x: Any) -> bool:
    return isinstance(x, torch.Tensor | np.ndarray)


def _rows(x: Any) -> int | None:
    return int(x.shape[0]) if _is_array(x) and x.ndim >= 1 else None


@dataclass(frozen=True)
class BatchFormat:
    """How to read batches: which dict entry holds the labels, where the attention mask is,
    and which part of the model's output counts (see :data:`LabelSpec`, :data:`MaskSpec`,
    :data:`OutputSpec`)."""

    labels: LabelSpec = _DEFAULT_LABELS
    mask: MaskSpec = _DEFAULT_MASK
    output: OutputSpec = None

    def __post_init__(self) -> None:
        if self.labels is not None and not isinstance(self.labels, str):
            raise TypeError(f"labels must be a dict key or None, got {self.labels!r}")
        if self.output is not None and not isinstance(self.output, str | int) and not callable(
            self.output
        ):
            raise TypeError(f"output must be a key, an index or a callable, got {self.output!r}")
        if isinstance(self.mask, np.ndarray | torch.Tensor):
            m = _tensor(self.mask, "mask")
            if m.ndim != 2:
                raise ValueError(
                    f"a mask tensor must be (samples, seq), one row per sample; got shape "
                    f"{tuple(m.shape)}"
                )
            object.__setattr__(self, "mask", m)

    def batch(self, raw: Any, offset: int = 0) -> Batch:
        """One raw batch as a :class:`Batch`; ``offset`` is its first sample's index in the
        data (used to slice a whole-dataset mask tensor)."""
        labels = None
        if _is_array(raw):
            args, kwargs = (_tensor(raw, "inputs"),), {}
        elif isinstance(raw, tuple | list) and raw and _is_array(raw[0]):
            args, kwargs = (_tensor(raw[0], "inputs"),), {}
            if len(raw) > 1 and raw[1] is not None:
                labels = _tensor(raw[1], "labels")
        elif isinstance(raw, Mapping):
            if not raw:
                raise ValueError("a batch dict is empty; it needs the model's inputs")
            kwargs = {str(k): _tensor(v, f"entry {k!r}") if isinstance(v, np.ndarray) else v
                      for k, v in raw.items()}
            args = ()
            if self.labels is not None and self.labels in kwargs:
                labels = _tensor(kwargs.pop(self.labels), f"labels {self.labels!r}")
            elif self.labels not in (None, _DEFAULT_LABELS):
                raise ValueError(
                    f"the labels entry {self.labels!r} is not in the batch; it has "
                    f"{', '.join(map(repr, kwargs))}"
                )
            if not kwargs:
                raise ValueError("a batch dict holds only labels; it needs the model's inputs")
        else:
            raise TypeError(
                f"a batch must be a tensor, an (x, y) tuple, a dict or a BatchEncoding, got "
                f"{type(raw).__name__}"
            )
        size = next(
            (r for r in map(_rows, (*args, *kwargs.values())) if r is not None), None
        )
        if size is None:
            raise ValueError(
                "the batch has no input with a batch dimension; pass inputs shaped (batch, ...)"
            )
        if size == 0:
            raise ValueError("a batch is empty (0 samples); pass at least one sample")
        if labels is not None and labels.ndim == 0:
            raise ValueError(
                "a batch's label is a scalar: is it one unbatched sample? Pass (x[None], "
                "y[None]), or batch the data (a DataLoader with batch_size=..., not None)"
            )
        if labels is not None and labels.shape[0] != size:
            raise ValueError(
                f"inputs and labels differ in length ({size} vs {labels.shape[0]}); pass one "
                "label per sample"
            )
        mask = self._mask(raw, kwargs, size, offset)
        return Batch(args=args, kwargs=kwargs, labels=labels, mask=mask, size=size, raw=raw)

    def _mask(self, raw: Any, kwargs: dict[str, Any], size: int, offset: int) -> torch.Tensor | None:
        spec = self.mask
        if spec is None:
            return None
        if isinstance(spec, str):
            if spec in kwargs:
                m = kwargs[spec]
            elif spec == _DEFAULT_MASK:
                return None
            else:
                where = f"it has {', '.join(map(repr, kwargs))}" if kwargs else "it is not a dict"
                raise ValueError(f"the mask entry {spec!r} is not in the batch; {where}")
        elif isinstance(spec, torch.Tensor):
            if offset + size > spec.shape[0]:
                raise ValueError(
                    f"the mask has {spec.shape[0]} rows but the data has more samples; pass "
                    "one mask row per sample"
                )
            m = spec[offset:offset + size]
        else:
            m = spec(raw)
        return as_mask(m, size)

    def output_of(self, output: Any) -> torch.Tensor:
        """The tensor of ``output`` that this format's ``output`` spec picks."""
        return pick_output(output, self.output)


def as_mask(m: Any, size: int) -> torch.Tensor:
    """An attention mask as a bool ``(size, seq)`` tensor, refusing anything else."""
    m = _tensor(m, "the attention mask")
    if m.ndim != 2 or m.shape[0] != size:
        raise ValueError(
            f"the attention mask must be (batch, seq) = ({size}, seq), got shape {tuple(m.shape)}"
        )
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(
                "the attention mask must hold 1 (or True) for real tokens and 0 (False) for "
                "padding; for a padding mask where True marks padding (PyTorch's "
                "src_key_padding_mask) pass mask=lambda batch: ~padding_mask"
            )
        m = m != 0
    return m


def pick_output(output: Any, spec: OutputSpec = None) -> torch.Tensor:
    """The tensor used for targets and losses from whatever the model returned.

    ``spec`` ``None``: a tensor itself; a dict or HF ``ModelOutput``: its ``logits`` if present,
    else its first tensor; a tuple/list: its first tensor. A key or an index picks that entry;
    a callable is applied to the output.
    """
    if callable(spec) and not isinstance(spec, str | int):
        t = spec(output)
    elif spec is None:
        t = output_tensor(output)
    elif isinstance(spec, str):
        if isinstance(output, Mapping):
            if spec not in output:
                raise ValueError(
                    f"the model's output has no {spec!r}; it has {', '.join(map(repr, output))}"
                )
            t = output[spec]
        elif hasattr(output, spec):
            t = getattr(output, spec)
        else:
            raise ValueError(
                f"output={spec!r} names an entry but the model returned a {type(output).__name__}"
            )
    else:
        items = list(output.values()) if isinstance(output, Mapping) else output
        if not isinstance(items, list | tuple):
            raise ValueError(
                f"output={spec} is an index but the model returned a {type(output).__name__}"
            )
        if not -len(items) <= spec < len(items):
            raise ValueError(f"output={spec} is out of range: the model returned {len(items)} items")
        t = items[spec]
    if not isinstance(t, torch.Tensor):
        raise TypeError(
            f"the chosen model output is a {type(t).__name__}, not a tensor; pick one with "
            "output= (a key such as 'logits', an index or a callable)"
        )
    return t


def check_output_rows(batch: Batch, out: torch.Tensor, what: str = "the model's output") -> None:
    """Refuse an output whose rows are not the batch's samples (unbatched or seq-first)."""
    rows = int(out.shape[0]) if out.ndim else None
    one_d = batch.inputs.ndim == 1
    if rows != batch.size or (one_d and out.ndim < 2):
        shape = tuple(batch.inputs.shape)
        hint = (
            f" The inputs have shape {shape}: if that is one sample, pass x[None] (shape "
            f"{(1, *shape)}); if it is {shape[0]} samples of one feature, pass x[:, None]."
            if one_d else
            " Is the output sequence-first? Pick a batch-first output with output=."
        )
        raise ValueError(
            f"{what} has shape {tuple(out.shape)} for a batch of {batch.size} samples; netxray "
            f"needs one row per sample.{hint}"
        )


def read_batches(
    data: Any, batch_size: int = 1024, fmt: BatchFormat | None = None
) -> Iterator[Batch]:
    """Yield :class:`Batch` objects from the kinds of data netxray accepts.

    ``data``: a tensor or array ``(n, ...)``, an ``(X, y)`` pair, a dict of arrays ``(n, ...)``
    (a tokenizer's whole-dataset ``BatchEncoding``): all split into ``batch_size`` chunks; or a
    DataLoader or any iterable of batches (tensors, ``(x, y, ...)`` tuples, dicts). Labels must
    be in every batch or in none.
    """
    fmt = BatchFormat() if fmt is None else fmt
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    offset = 0
    with_labels: bool | None = None
    for raw in _raw_batches(data, batch_size):
        b = fmt.batch(raw, offset)
        has = b.labels is not None
        if with_labels is not None and has != with_labels:
            raise ValueError(
                "some batches have labels and some do not (the first difference is at sample "
                f"{offset}); pass labels for all samples or for none"
            )
        with_labels = has
        offset += b.size
        yield b
    if with_labels is None:
        raise ValueError("the data yielded no batches; pass at least one sample")
    if isinstance(fmt.mask, torch.Tensor) and fmt.mask.shape[0] != offset:
        raise ValueError(
            f"the mask has {fmt.mask.shape[0]} rows for {offset} samples; pass one mask row "
            "per sample"
        )


def _raw_batches(data: Any, batch_size: int) -> Iterator[Any]:
    if _is_array(data):
        if data.ndim == 0 or data.shape[0] == 0:
            raise ValueError(
                f"inputs are empty (shape {tuple(data.shape)}); pass at least one sample"
            )
        for start in range(0, data.shape[0], batch_size):
            yield data[start:start + batch_size]
        return
    if isinstance(data, tuple | list) and len(data) == 2 and all(map(_is_array, data)):
        X, y = data
        if X.ndim == 0 or X.shape[0] == 0:
            raise ValueError(f"inputs are empty (shape {tuple(X.shape)}); pass at least one sample")
        if y.ndim == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"inputs and labels differ in length ({X.shape[0]} vs "
                f"{y.shape[0] if y.ndim else 'a scalar'}); pass one label per sample"
            )
        for start in range(0, X.shape[0], batch_size):
            yield X[start:start + batch_size], y[start:start + batch_size]
        return
    if isinstance(data, Mapping):
        yield from _split_mapping(data, batch_size)
        return
    if not isinstance(data, Iterable) or isinstance(data, str | bytes):
        raise TypeError(
            f"cannot read data of type {type(data).__name__}: pass a tensor, an (X, y) pair, a "
            "dict of arrays, a DataLoader or an iterable of batches"
        )
    yield from data


def _split_mapping(data: Mapping[str, Any], batch_size: int) -> Iterator[dict[str, Any]]:
    rows = {k: _rows(v) for k, v in data.items()}
    sized = {k: r for k, r in rows.items() if r is not None}
    if not sized:
        raise ValueError("the data dict holds no arrays; pass arrays shaped (samples, ...)")
    n = next(iter(sized.values()))
    if n == 0:
        raise ValueError("the data dict's arrays are empty; pass at least one sample")
    wrong = {k: r for k, r in sized.items() if r != n}
    if wrong:
        k0 = next(iter(sized))
        k, r = next(iter(wrong.items()))
        raise ValueError(
            f"the data dict's entries differ in length ({k0!r}: {n}, {k!r}: {r}); pass one "
            "row per sample in every entry"
        )
    for start in range(0, n, batch_size):
        yield {k: v[start:start + batch_size] if rows[k] is not None else v
               for k, v in data.items()}
