"""Small models with explicit, seedable initialisation (the lecture's MLP and its relatives)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}

INITS = ("lecture", "he", "xavier", "normal", "torch")


def mlp(
    sizes: Sequence[int],
    activation: str = "relu",
    *,
    init: str = "he",
    scale: float = 0.4,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> nn.Sequential:
    """A multi-layer perceptron with named layers ``fc1, act1, fc2, act2, ..., fcN``.

    ``sizes`` lists the widths from input to output, e.g. ``(2, 10, 2)``. The last layer has
    no activation (it outputs logits). ``init``:

    - ``"lecture"``: the lecture's NumPy recipe, so its numbers reproduce exactly: one
      ``numpy.random.default_rng(seed)`` draws every weight matrix in order, shaped
      ``(fan_in, fan_out)``, from ``normal(0, scale)``; biases are zero.
    - ``"he"`` / ``"xavier"``: Kaiming-normal (for ReLU) / Glorot-normal weights, zero biases.
    - ``"normal"``: ``normal(0, scale)`` weights, zero biases (large ``scale`` saturates).
    - ``"torch"``: PyTorch's default ``nn.Linear`` initialisation.

    Every choice is seeded, so the same call always builds the same weights, and the same
    ``seed`` builds the same network in every ``dtype`` (up to rounding): the values are
    drawn in one fixed precision (float64 NumPy for ``"lecture"``, float32 torch otherwise)
    and then cast, so a float32 and a float64 model compare one initialisation, not two.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least an input and an output width >= 1, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {list(INITS)}")
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    n = len(sizes) - 1
    for i in range(n):
        layers[f"fc{i + 1}"] = nn.Linear(sizes[i], sizes[i + 1], dtype=dtype)
        if i < n - 1:
            layers[f"act{i + 1}"] = ACTIVATIONS[activation]()
    model = nn.Sequential(layers)
    _initialise(model, init=init, scale=scale, seed=seed, activation=activation)
    return model


@torch.no_grad()
def _initialise(model: nn.Sequential, *, init: str, scale: float, seed: int, activation: str) -> None:
    linears = [m for m in model if isinstance(m, nn.Linear)]
    if init == "lecture":
        rng = np.random.default_rng(seed)
        for lin in linears:
            w = rng.normal(scale=scale, size=(lin.in_features, lin.out_features))
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.zero_()
        return
    # Drawn in float32 whatever the model's dtype: each dtype has its own random stream,
    # so drawing in the model's dtype would give float64 another network than float32.
    gen = torch.Generator().manual_seed(seed)
    for lin in linears:
        w = torch.empty(lin.weight.shape, dtype=torch.float32)
        if init == "torch":
            bound = 1.0 / lin.in_features**0.5
            w.uniform_(-bound, bound, generator=gen)
            b = torch.empty(lin.bias.shape, dtype=torch.float32).uniform_(-bound, bound, generator=gen)
            lin.bias.copy_(b)
        else:
            if init == "he":
                std = (2.0 / lin.in_features) ** 0.5
            elif init == "xavier":
                std = (2.0 / (lin.in_features + lin.out_features)) ** 0.5
            else:
                std = scale
            w.normal_(0.0, std, generator=gen)
            lin.bias.zero_()
        lin.weight.copy_(w)
