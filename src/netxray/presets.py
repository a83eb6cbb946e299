"""Counter-examples: small, seeded training runs that each produce one pathology.

Each preset trains a small MLP on a toy 2-D data set in well under a few seconds, so the
health checks can be seen at work (and are tested against them): ``dying_relu``,
``saturated``, ``exploding``, ``vanishing``, ``nan`` and the ``healthy`` baseline.

>>> run = netxray.presets.get("dying_relu").run(seed=0)
>>> netxray.diagnose(run.model, run.data.tensors()).kinds
{'dead_units', ...}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

#: ``(model, training Dataset, optimizer steps) -> an unopened netxray.watch(...)``, for
#: :meth:`Preset.run`
Watcher = Callable[[nn.Module, Any, int], Any]


@dataclass(frozen=True)
class PresetRun:
    """A trained ``model``, the ``data`` (a :class:`netxray.data.Dataset`) it was trained on,
    held-out ``test`` data from the same distribution, and its ``history``
    (:class:`netxray.training.TrainingHistory`, with test curves and the weights before,
    half-way through and after training in ``history.checkpoints``)."""

    name: str
    model: nn.Module
    data: Any
    history: Any
    test: Any


@dataclass(frozen=True)
class Preset:
    """A recipe: ``description`` says what it shows; ``expected`` lists the finding kinds it
    produces (empty for ``healthy``); ``run(seed)`` trains it."""

    name: str
    description: str
    expected: tuple[str, ...]
    _build: Callable[..., PresetRun]

    def run(self, seed: int = 0, *, watch: Watcher | None = None) -> PresetRun:
        """Train the preset (seconds on a CPU) and return the :class:`PresetRun`.

        ``watch``: ``(model, training data, optimizer steps) -> netxray.watch(model, ...)``,
        to record the training in a run store (``netxray train --preset``); the recipe is
        unchanged.
        """
        return self._build(seed, watch)


def _moons(seed: int) -> Any:
    from netxray import data

    return data.moons(n_samples=700, noise=0.2, seed=seed)


def _train(name: str, sizes: list[int], activation: str, *, init: str, scale: float = 0.4,
           epochs: int, lr: float, optimizer: str = "sgd", seed: int,
           watch: Watcher | None = None) -> PresetRun:
    from netxray.models import mlp
    from netxray.training import train

    ds, test = _moons(seed).split(test_size=0.3, seed=seed)
    model = mlp(sizes, activation, init=init, scale=scale, seed=seed)
    kwargs = dict(epochs=epochs, lr=lr, optimizer=optimizer, seed=seed, test_data=test.tensors(),
                  checkpoints=sorted({0, epochs // 2, epochs}))
    if watch is None:
        history = train(model, ds.tensors(), **kwargs)
    else:
        with watch(model, ds, epochs) as w:  # full-batch: one optimizer step per epoch
            history = train(model, ds.tensors(), watch=w, **kwargs)
    model.eval()
    return PresetRun(name=name, model=model, data=ds, history=history, test=test)


def _healthy(seed: int, watch: Watcher | None = None) -> PresetRun:
    return _train("healthy", [2, 64, 64, 2], "leaky_relu", init="he", epochs=100, lr=0.05,
                  optimizer="momentum", seed=seed, watch=watch)


def _dying_relu(seed: int, watch: Watcher | None = None) -> PresetRun:
    return _train("dying_relu", [2, 64, 64, 2], "relu", init="he", epochs=30, lr=1.5,
                  optimizer="momentum", seed=seed, watch=watch)


def _saturated(seed: int, watch: Watcher | None = None) -> PresetRun:
    return _train("saturated", [2, 64, 64, 2], "tanh", init="normal", scale=3.0, epochs=50,
                  lr=0.05, seed=seed, watch=watch)


def _exploding(seed: int, watch: Watcher | None = None) -> PresetRun:
    return _train("exploding", [2] + [64] * 8 + [2], "relu", init="normal", scale=0.5,
                  epochs=1, lr=1e-12, seed=seed, watch=watch)


def _vanishing(seed: int, watch: Watcher | None = None) -> PresetRun:
    return _train("vanishing", [2] + [32] * 10 + [2], "sigmoid", init="xavier", epochs=20,
                  lr=0.5, seed=seed, watch=watch)


def _nan(seed: int, watch: Watcher | None = None) -> PresetRun:
    return _train("nan", [2, 64, 64, 2], "relu", init="he", epochs=30, lr=1e4,
                  optimizer="momentum", seed=seed, watch=watch)


_PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("healthy", "A 2-64-64-2 LeakyReLU MLP with He init and a moderate learning "
               "rate (momentum SGD, lr 0.05): the baseline with no findings. (With plain ReLU, "
               "5-15% of the second layer's units are dead even at init on 2-D inputs; "
               "LeakyReLU keeps a small gradient, so no unit can die.)", (), _healthy),
        Preset("dying_relu", "The same ReLU MLP trained with a learning rate far too high "
               "(momentum SGD, lr 1.5): large updates push units' pre-activations negative "
               "for every input and they never come back.", ("dead_units",), _dying_relu),
        Preset("saturated", "A tanh MLP whose weights start at N(0, 3^2): pre-activations are "
               "so large that most units sit at +-1, where tanh has no gradient.",
               ("saturated_units",), _saturated),
        Preset("exploding", "A deep (8 hidden layers) ReLU MLP without normalization, weights "
               "N(0, 0.5^2) (about 2.8x He): activations grow about 2.8x per layer.",
               ("exploding_activations",), _exploding),
        Preset("vanishing", "A deep (10 hidden layers) sigmoid MLP: each layer multiplies the "
               "backward signal by at most 0.25, so the first layers get almost no gradient.",
               ("vanishing_gradients",), _vanishing),
        Preset("nan", "The ReLU MLP trained with a learning rate that diverges (lr 1e4): "
               "the loss and then the weights become NaN/Inf.", ("nonfinite",), _nan),
    )
}


def names() -> list[str]:
    """The preset names."""
    return list(_PRESETS)


def get(name: str) -> Preset:
    """The preset called ``name``."""
    try:
        return _PRESETS[name]
    except KeyError:
        import difflib

        from netxray import resumes

        if name in resumes.names():
            raise ValueError(
                f"{name!r} is a text preset (a text classifier, not an MLP on 2-D points): "
                f"run it with `netxray demo --preset {name}` or netxray.resumes.get({name!r})"
            ) from None

        close = difflib.get_close_matches(name, list(_PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else "."
        raise ValueError(f"unknown preset {name!r}{hint} Presets: {', '.join(_PRESETS)}.") from None
