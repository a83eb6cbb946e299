"""Record what a model's layers output: layer selection, a hook context manager, whole datasets.

A layer's name is its dotted path in ``model.named_modules()`` (``"encoder.0"``, ``"fc2"``).
Hooks exist only inside :func:`record` and are removed in ``finally``, whatever happens.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from netxray._checks import as_input_tensor, check_eval_mode, preserved_state
from netxray._results import Result

LayerSpec = str | type[nn.Module] | Callable[[str, nn.Module], bool]
Layers = LayerSpec | Sequence[LayerSpec] | None

#: Element-wise activation modules: the default layers to watch.
ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU,
    nn.SiLU, nn.Mish, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardswish,
    nn.Hardsigmoid, nn.LogSigmoid, nn.Tanhshrink, nn.Softsign,
)  # fmt: skip

_GLOB_CHARS = set("*?[")


def _named(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if name}


def default_layers(model: nn.Module) -> dict[str, nn.Module]:
    """The activation-function modules of ``model``; its leaf modules if it has none."""
    named = _named(model)
    acts = {n: m for n, m in named.items() if isinstance(m, ACTIVATIONS)}
    if acts:
        return acts
    return {n: m for n, m in named.items() if not any(True for _ in m.children())}


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
    or a list of these. A name or glob that matches nothing raises ``ValueError`` listing
    close matches.
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
    for spec in specs:
        if isinstance(spec, str):
            if _GLOB_CHARS & set(spec):
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
    if not picked:
        raise ValueError(f"the selection {layers!r} matched no layer")
    return {n: m for n, m in named.items() if n in picked}


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


@contextlib.contextmanager
def hooks(
    modules: dict[str, nn.Module], fn: Callable[[str, torch.Tensor], None]
) -> Iterator[None]:
    """Call ``fn(name, output)`` after each selected module's forward; remove hooks on exit."""
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


class Recording:
    """The outputs of the recorded layers, one tensor per forward call.

    ``rec["fc1"]`` concatenates every call's output along the batch dimension;
    ``rec.calls("fc1")`` gives them one by one. Outputs are detached unless
    ``record(..., detach=False)``, in which case gradients can flow through them.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._outputs: dict[str, list[torch.Tensor]] = {n: [] for n in names}

    @property
    def layers(self) -> list[str]:
        return list(self._outputs)

    def calls(self, name: str) -> list[torch.Tensor]:
        if name not in self._outputs:
            raise _unknown_layer(name, dict.fromkeys(self._outputs), " in this recording")  # type: ignore[arg-type]
        return list(self._outputs[name])

    def __getitem__(self, name: str) -> torch.Tensor:
        outs = self.calls(name)
        if not outs:
            raise ValueError(f"layer {name!r} was recorded but never ran; call the model first")
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=0)

    def __contains__(self, name: object) -> bool:
        return name in self._outputs

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    def clear(self) -> None:
        for outs in self._outputs.values():
            outs.clear()

    def _add(self, name: str, output: torch.Tensor) -> None:
        self._outputs[name].append(output)


@contextlib.contextmanager
def record(model: nn.Module, layers: Layers = None, *, detach: bool = True) -> Iterator[Recording]:
    """Capture the outputs of ``layers`` during every forward call inside the block.

    >>> with netxray.record(model, layers="act*") as rec:
    ...     model(x)
    >>> rec["act1"].shape  # (batch, units)
    """
    chosen = select_layers(model, layers)
    rec = Recording(chosen)

    def keep(name: str, output: torch.Tensor) -> None:
        rec._add(name, output.detach() if detach else output)

    with hooks(chosen, keep):
        yield rec


def iter_batches(
    data: Any, batch_size: int = 1024
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Yield ``(inputs, targets or None)`` from the kinds of data netxray accepts.

    ``data`` is a tensor or array ``(n, ...)``, an ``(X, y)`` pair of them (split into
    ``batch_size`` chunks), a DataLoader, or any iterable of batches (each a tensor or an
    ``(x, y, ...)`` tuple/list, or a dict with ``"x"``/``"input"`` keys).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if isinstance(data, torch.Tensor | np.ndarray):
        X, y = _as_tensor(data, "inputs"), None
    elif isinstance(data, tuple | list) and len(data) == 2 and _is_array(data[0]):
        X, y = _as_tensor(data[0], "inputs"), _as_tensor(data[1], "targets")
        if y.shape[0] != X.shape[0]:
            raise ValueError(
                f"inputs and targets differ in length ({X.shape[0]} vs {y.shape[0]}); "
                "pass one target per sample"
            )
    else:
        yield from _iter_loader(data)
        return
    if X.ndim == 0 or X.shape[0] == 0:
        raise ValueError(f"inputs are empty (shape {tuple(X.shape)}); pass at least one sample")
    for start in range(0, X.shape[0], batch_size):
        stop = start + batch_size
        yield X[start:stop], None if y is None else y[start:stop]


def _is_array(x: Any) -> bool:
    return isinstance(x, torch.Tensor | np.ndarray)


def _as_tensor(x: Any, what: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if x.dtype == object:
            raise TypeError(f"{what} must be numeric, got an object array")
        return torch.from_numpy(np.ascontiguousarray(x))
    return x


def _iter_loader(loader: Iterable[Any]) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    try:
        iterator = iter(loader)
    except TypeError:
        raise TypeError(
            f"cannot read data of type {type(loader).__name__}: pass a tensor, an (X, y) pair, "
            "a DataLoader or an iterable of batches"
        ) from None
    seen = False
    for batch in iterator:
        seen = True
        if _is_array(batch):
            yield _as_tensor(batch, "inputs"), None
        elif isinstance(batch, tuple | list) and batch and _is_array(batch[0]):
            target = batch[1] if len(batch) > 1 and _is_array(batch[1]) else None
            yield (
                _as_tensor(batch[0], "inputs"),
                None if target is None else _as_tensor(target, "targets"),
            )
        elif isinstance(batch, dict):
            key = next((k for k in ("x", "input", "inputs") if k in batch), None)
            if key is None:
                raise ValueError(
                    f"a batch dict needs an 'x' or 'input' key; it has {sorted(batch)}"
                )
            target = next((batch[k] for k in ("y", "target", "label") if k in batch), None)
            yield _as_tensor(batch[key], "inputs"), target
        else:
            raise TypeError(
                f"a batch must be a tensor, an (x, y) tuple or a dict, got {type(batch).__name__}"
            )
    if not seen:
        raise ValueError("the data yielded no batches; pass at least one sample")


@dataclass(frozen=True, eq=False)
class Activations(Result):
    """Hidden-layer outputs over a dataset, kept on the CPU.

    ``layers[name]`` is ``(n, ...)``, the layer's output for every sample; ``outputs`` is the
    model's output ``(n, ...)``; ``targets`` the labels ``(n,)`` when the data had them.
    """

    layers: dict[str, torch.Tensor]
    outputs: torch.Tensor
    targets: torch.Tensor | None

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.layers:
            raise _unknown_layer(name, dict.fromkeys(self.layers), " in these activations")  # type: ignore[arg-type]
        return self.layers[name]

    def flat(self, name: str) -> np.ndarray:
        """``(n, features)`` NumPy view of a layer, conv maps flattened, for projections."""
        h = self[name]
        return h.reshape(h.shape[0], -1).numpy()


def activations(
    model: nn.Module,
    data: Any,
    layers: Layers = None,
    *,
    batch_size: int = 1024,
    allow_train: bool = False,
) -> Activations:
    """Run ``model`` over ``data`` without gradients and keep the chosen layers' outputs.

    ``data``: a tensor ``(n, ...)``, an ``(X, y)`` pair, a DataLoader or an iterable of batches.
    Memory grows with the data (everything is kept): for statistics over large data use
    :func:`netxray.collect_stats`, which keeps none.
    """
    check_eval_mode(model, allow_train=allow_train)
    chosen = select_layers(model, layers)
    kept: dict[str, list[torch.Tensor]] = {n: [] for n in chosen}
    outputs: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []

    def keep(name: str, output: torch.Tensor) -> None:
        kept[name].append(output.detach().to("cpu", copy=output.device.type == "cpu"))

    with preserved_state(model), torch.no_grad(), hooks(chosen, keep):
        for x, y in iter_batches(data, batch_size):
            x = as_input_tensor(x, model)
            out = first_tensor(model(x))
            if out is None:
                raise TypeError("the model returned no tensor")
            outputs.append(out.detach().cpu())
            if y is not None:
                targets.append(torch.as_tensor(y).cpu())
    missing = [n for n, v in kept.items() if not v]
    if missing:
        raise ValueError(
            f"layer(s) {', '.join(missing)} never ran during the forward pass; "
            "are they used by model.forward?"
        )
    return Activations(
        layers={n: torch.cat(v) for n, v in kept.items()},
        outputs=torch.cat(outputs),
        targets=torch.cat(targets) if targets else None,
    )
