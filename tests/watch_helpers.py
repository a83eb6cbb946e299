"""Training a tiny model under a watch, for the tests that need a recorded run."""

from __future__ import annotations

from typing import Any

import torch


def train_steps(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor,
                opt: torch.optim.Optimizer, w: Any, steps: int = 1) -> None:
    """``steps`` full-batch steps of cross-entropy training, each closed with ``w.step``."""
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        w.step(loss=loss)


def watched_step(model: torch.nn.Module, w: Any, inputs: dict[str, Any], y: torch.Tensor,
                 loss_of: Any = None) -> None:
    """One training step on keyword inputs, closed with ``w.step``: the loss is
    ``loss_of(output)``, else the cross-entropy of the output with ``y``; no optimizer (the
    watch records the step's forward and backward)."""
    out = model(**inputs)
    loss = loss_of(out) if loss_of is not None else torch.nn.functional.cross_entropy(out, y)
    loss.backward()
    w.step(loss=loss)
