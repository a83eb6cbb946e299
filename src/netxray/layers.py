"""Which layers to watch: selection by dotted name, glob, type or predicate, and defaults.

A layer's name is its dotted path in ``model.named_modules()`` (``"encoder.0"``, ``"fc2"``);
call k >= 1 of a module used several times in one forward pass is ``"name#k"``.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from torch import nn

LayerSpec = str | type[nn.Module] | Callable[[str, nn.Module], bool]
Layers = LayerSpec | Sequence[LayerSpec] | None

#: Element-wise activation modules: the default layers to watch.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish,
    nn.Hardsigmoid, nn.LogSigmoid, nn.Tanhshrink, nn.Softsign,
)  # fmt: skip

_GLOB_CHARS = set("*?[")
_CALL_NAME = re.compile(r"(.+)#(\d+)")

# Activation modules of other libraries (HF's GELUActivation, NewGELUActivation, XIELU...)
# recognised by class name: a parameter-light leaf whose name says what it computes.
# ("ELU" only in capitals: "ParallelUnit" is not one).
_ACTIVATION_NAME = re.compile(
    r"(?i:gelu|silu|swish|relu|mish|tanh|sigmoid|softplus|softsign|laplace)|ELU"
)


def _named(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if name}


def _is_leaf(m: nn.Module) -> bool:
    return not any(True for _ in m.children())


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an element-wise activation: a torch one, or a leaf module of
    another library whose class name says so (``GELUActivation``, ``NewGELUActivation``)."""
    if isinstance(module, ACTIVATIONS):
        return True
    return _is_leaf(module) and bool(_ACTIVATION_NAME.search(type(module).__name__))


def _is_attention(m: nn.Module) -> bool:
    return isinstance(m, nn.MultiheadAttention) or "attention" in type(m).__name__.lower()


def _blocks(model: nn.Module) -> set[str]:
    """Transformer blocks: items of an ``nn.ModuleList`` that hold an attention module and an
    activation (``encoder.layer.0``, ``h.3``, ``layers.1``)."""
    found = set()
    for name, m in model.named_modules():
        if not isinstance(m, nn.ModuleList):
            continue
        for i, block in enumerate(m):
            subs = list(block.modules())
            if any(map(_is_attention, subs)) and any(map(is_activation, subs)):
                found.add(f"{name}.{i}" if name else str(i))
    return found


def default_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The activation-function modules of ``model`` and, in a transformer, its blocks' outputs;
    its leaf modules if it has no activation."""
    named = _named(model)
    blocks = _blocks(model)
    acts = {n: m for n, m in named.items() if is_activation(m) or n in blocks}
    if acts:
        return acts
    return {n: m for n, m in named.items() if _is_leaf(m)}


def _unknown_layer(name: str, named: dict[str, nn.Module], where: str = "") -> ValueError:
    lower = {n.lower(): n for n in named}
    close = difflib.get_close_matches(name.lower(), list(lower), n=3, cutoff=0.5)
    close = [lower[c] for c in close]
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."
    listed = ", ".join(list(named)[:30]) + (" ..." if len(named) > 30 else "")
    return ValueError(f"layer {name!r} not found{where}{hint} Layers: {listed}")


def select_layers(model: nn.Module, layers: Layers = None) -> dict[str, nn.Module]:
    """Resolve a layer selection to ``{dotted name: module}`` in ``named_modules`` order.

    ``layers`` may be ``None`` (:func:`default_layers`), a dotted name, a glob
    (``"blocks.*.mlp"``), an ``nn.Module`` subclass, a predicate ``(name, module) -> bool``,
    or a list of these. A module called k times per forward pass is k layers: selecting it
    records every call (``relu``, ``relu#1``, ...); ``"relu#1"`` selects its second call only,
    and a glob with a call suffix (``"block*.relu#1"``) that call of every module it matches.
    A name or glob that matches nothing raises ``ValueError`` listing close matches.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if layers is None:
        chosen = default_layers(model)
        if not chosen:
            raise ValueError("the model has no submodules to record; name a layer explicitly")
        return chosen
    named = _named(model)
    if isinstance(layers, str | type) or callable(layers):
        specs: Sequence[LayerSpec] = [layers]
    elif isinstance(layers, list | tuple | set | frozenset):
        specs = list(layers)
    else:
        raise TypeError(
            f"cannot select layers with {layers!r}: use a dotted name, a glob, an nn.Module "
            "subclass, a predicate (name, module) -> bool, or a list of these"
        )
    picked: set[str] = set()
    calls: dict[str, set[int]] = {}
    for spec in specs:
        if isinstance(spec, str):
            call = _CALL_NAME.fullmatch(spec)
            if call and spec not in named:
                base, k = call[1], int(call[2])
                bases = ([n for n in named if fnmatch.fnmatchcase(n, base)]
                         if _GLOB_CHARS & set(base) else [base] if base in named else [])
                if not bases:
                    raise _unknown_layer(base, named, f" (in {spec!r}: {base!r} names the "
                                         f"module, #{k} its call)")
                if k == 0:
                    raise ValueError(
                        f"{spec!r}: the first call of a module is named by the module alone "
                        f"({base!r}, which records every call); later calls are {base}#1, ..."
                    )
                for b in bases:
                    calls.setdefault(b, set()).add(k)
            elif _GLOB_CHARS & set(spec):
                hits = [n for n in named if fnmatch.fnmatchcase(n, spec)]
                if not hits:
                    raise _unknown_layer(spec, named)
                picked.update(hits)
            elif spec in named:
                picked.add(spec)
            else:
                raise _unknown_layer(spec, named)
        elif isinstance(spec, type) and issubclass(spec, nn.Module):
            hits = [n for n, m in named.items() if isinstance(m, spec)]
            if not hits:
                raise ValueError(f"the model has no {spec.__name__} module")
            picked.update(hits)
        elif callable(spec):
            picked.update(n for n, m in named.items() if spec(n, m))
        else:
            raise TypeError(
                f"cannot select layers with {spec!r}: use a dotted name, a glob, "
                "an nn.Module subclass or a predicate (name, module) -> bool"
            )
    if not picked and not calls:
        raise ValueError(f"the selection {layers!r} matched no layer")
    chosen: dict[str, nn.Module] = {}
    for n, m in named.items():
        if n in picked:
            chosen[n] = m
        else:
            chosen.update((call_name(n, k), m) for k in sorted(calls.get(n, ())))
    return chosen


def call_name(name: str, call: int) -> str:
    """The layer name of call ``call`` (0, 1, ...) of module ``name`` in one forward pass."""
    return name if call == 0 else f"{name}#{call}"


def check_ran(
    chosen: Iterable[str], ran: Collection[str], runs: Mapping[str, int] | None = None
) -> None:
    """Refuse layers of the selection that never ran: their statistics or rows would be
    missing from the result without a word (a report of "no problems" over nothing).
    ``runs``: ``{module name: most calls in one forward pass}`` (what
    :func:`netxray.capture.call_hooks` yields), to say which calls a ``name#k`` could name."""
    missing = [n for n in chosen if n not in ran]
    fewer = {n: fewer_calls(n, runs or {}) for n in missing}
    unused = [n for n in missing if fewer[n] is None]
    told = [m for m in fewer.values() if m is not None]
    if unused:
        told.append(
            f"layer(s) {', '.join(unused)} never ran during the forward pass; are they used "
            "by model.forward? Select layers that the forward pass calls (a module defined in "
            "__init__ but not called in forward never runs; 'name#k' needs a module called "
            "more than k times per forward pass)"
        )
    if told:
        raise ValueError("; ".join(told))


def fewer_calls(name: str, runs: Mapping[str, int]) -> str | None:
    """The message for call ``name`` (``"relu#5"``) of a module that ran, but fewer times per
    forward pass: how many times it ran and the names of its calls; ``None`` when ``name`` is
    no call name or its module never ran."""
    call = _CALL_NAME.fullmatch(name)
    n = runs.get(call[1], 0) if call else 0
    if not call or n < 1:
        return None
    base = call[1]
    names = ", ".join(call_name(base, k) for k in range(min(n, 8))) + (", ..." if n > 8 else "")
    times = "once per forward pass, as layer" if n == 1 else (
        f"{n} times per forward pass, as layers")
    return (
        f"layer {name!r} never ran: module {base!r} ran {times} {names} ({base}#k is its "
        f"call k, counting from 0: {name!r} would need {int(call[2]) + 1} calls). Select one "
        "of these names"
    )


#: Modules whose output is channel-first, ``(batch, channels, positions...)``: their units are
#: dim 1, and a 3-D output's last dim is its sequence (a text CNN's ``Conv1d`` on
#: ``(batch, emb, seq)``).
_CHANNEL_MODULES = (
    nn.modules.conv._ConvNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd,
    nn.modules.pooling._MaxUnpoolNd,
    nn.FractionalMaxPool2d, nn.FractionalMaxPool3d,
    nn.GroupNorm, nn.LocalResponseNorm,
    nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.FeatureAlphaDropout,
    nn.modules.padding._ConstantPadNd,
    nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd,
    nn.modules.padding._CircularPadNd,
    nn.Upsample, nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle,
)  # fmt: skip

#: Modules whose output has its features last, ``(batch, [seq, ...,] features)``.
_FEATURE_MODULES = (
    nn.Linear, nn.Bilinear, nn.LayerNorm, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
    nn.Embedding, nn.EmbeddingBag, nn.Flatten, nn.RNNBase, nn.RNNCellBase,
    nn.MultiheadAttention, nn.TransformerEncoder, nn.TransformerEncoderLayer,
    nn.TransformerDecoder, nn.TransformerDecoderLayer, nn.Transformer,
)  # fmt: skip


def unit_dims(model: nn.Module, chosen: Mapping[str, nn.Module]) -> dict[str, int]:
    """Which dimension of each chosen layer's output indexes its units: channels (dim 1) for
    conv-like layers and activations that follow one; else the last dim (features, or the
    hidden size of tokens).
    A selected call of a shared module (``relu#1``) takes its module's."""
    return {n: dim for n, (dim, _) in layer_layouts(model, chosen).items()}


def layer_layouts(model: nn.Module, chosen: Mapping[str, nn.Module]
                  ) -> dict[str, tuple[int, bool]]:
    """``(unit dim, inferred)`` per chosen layer. A module of a conv-like type has its units
    at dim 1, one of a linear/normalising/recurrent/attention type last; any other module
    (an activation, dropout, a block of another library) takes those of the nearest such
    module declared before it, and is ``inferred`` when the model has conv-like modules
    at all (its layout is then a guess from declaration order, which the shape of its output
    must confirm)."""
    per_module: dict[str, tuple[int, bool]] = {}
    channels = any(isinstance(m, _CHANNEL_MODULES) for m in model.modules())
    last = -1
    for name, module in model.named_modules():
        if isinstance(module, _CHANNEL_MODULES):
            last, inferred = 1, False
        elif isinstance(module, _FEATURE_MODULES):
            last, inferred = -1, False
        else:
            inferred = channels
        per_module[name] = (last, inferred)
    out = {}
    for name in chosen:
        call = _CALL_NAME.fullmatch(name)
        out[name] = per_module.get(name, per_module.get(call[1] if call else name, (-1, False)))
    return out
